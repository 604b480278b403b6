"""Calendar invites (iCalendar, RFC 5545/5546) built with ``icalendar``.

One session is one calendar entry: its ``UID`` is derived from the session
id, and ``SEQUENCE`` grows with every change (the session stream's version),
so Outlook and Google Calendar update or remove the same entry on a move or
a cancellation (``METHOD:REQUEST`` / ``METHOD:CANCEL``). Times are written in
the recipient's time zone, with its ``VTIMEZONE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from icalendar import Calendar, Event, vCalAddress, vText

from services.notifications.adapters.rendering import zone

PRODID = "-//Binome//Notifications//EN"


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str


def session_uid(session_id: UUID) -> str:
    return f"session-{session_id}@binome"


def _address(email: str, name: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    address.params["CN"] = vText(name)
    for key, value in params.items():
        address.params[key] = vText(value)
    return address


def invite(
    *,
    session_id: UUID,
    sequence: int,
    cancelled: bool,
    starts_at: datetime,
    duration_minutes: int,
    summary: str,
    organiser: Attendee,
    attendees: list[Attendee],
    time_zone: str | None,
    stamp: datetime,
) -> bytes:
    """The ``text/calendar`` document of one session for one recipient."""
    tz = zone(time_zone)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", session_uid(session_id))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    start = starts_at.astimezone(tz)
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=duration_minutes))
    event.add("summary", summary)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("organizer", _address(organiser.email, organiser.name))
    for person in attendees:
        event.add("attendee", _address(person.email, person.name, ROLE="REQ-PARTICIPANT", RSVP="TRUE"))
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
