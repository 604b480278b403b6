"""Notifications, pure parts: every kind has a template in every language,
rendered as text and escaped HTML with dates in the recipient's language and
time zone; the invite says REQUEST or CANCEL for the same entry; who may
turn what off; which language a person is written in; the mail server URL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from icalendar import Calendar

from services.notifications.adapters.invites import Attendee, invite
from services.notifications.adapters.mail import MailFolder, SmtpServer, mailer_from
from services.notifications.adapters.rendering import render, when
from services.notifications.domain.kinds import ESSENTIAL, LANGUAGES, Kind, language_for, wanted

VALUES = {"name": "Ana <b>", "other": "Jo & Co", "when": "demain", "duration": 45, "due": "lundi", "total": 900,
          "budget": 600, "country": "FR", "day": "lundi",  # a committee's digest names the pairs' members
          "pairs": [{"mentee": "Ana <b>", "mentor": "Jo & Co", "status": "at_risk", "reasons": ["no_first_session"],
                     "since": "lundi", "pair_id": "p1"}]}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_renders_in_every_language(kind: Kind, language: str) -> None:
    rendered = render(kind, language, VALUES)
    assert rendered.subject and "\n" not in rendered.subject
    assert "Ana <b>" in rendered.text  # plain text is not escaped
    assert "Ana &lt;b&gt;" in rendered.html and "<b>" not in rendered.html.replace("<body", "")
    assert f'<html lang="{language}">' in rendered.html


def test_templates_differ_per_language() -> None:
    subjects = {render(Kind.SESSION_SCHEDULED, language, VALUES).subject for language in LANGUAGES}
    assert len(subjects) == len(LANGUAGES)


def test_dates_read_in_the_recipients_language_and_zone() -> None:
    moment = datetime(2027, 3, 12, 9, 0, tzinfo=UTC)
    assert when(moment, "fr", "Europe/Paris") == "vendredi 12 mars 2027 10:00 (Europe/Paris)"
    assert when(moment, "de", "Europe/Berlin") == "Freitag, 12. März 2027 10:00 (Europe/Berlin)"
    assert when(moment, "ja", "Asia/Tokyo").startswith("2027年3月12日") and "18:00" in when(moment, "ja", "Asia/Tokyo")
    assert when(moment, "en", "Not/AZone").endswith("(UTC)")  # a zone Binome does not know: UTC, said so


@pytest.mark.parametrize("cancelled", [False, True])
def test_an_invite_names_the_same_entry_with_its_sequence(cancelled: bool) -> None:
    session_id = uuid.uuid4()
    document = invite(
        session_id=session_id, sequence=3, cancelled=cancelled, starts_at=datetime(2027, 3, 12, 9, tzinfo=UTC),
        duration_minutes=45, summary="Session", organiser=Attendee("binome@example.org", "Binome"),
        attendees=[Attendee("ana@example.com", "Ana"), Attendee("jo@example.com", "Jo")],
        time_zone="America/Sao_Paulo", stamp=datetime(2027, 3, 1, tzinfo=UTC),
    )
    calendar = Calendar.from_ical(document)
    (event,) = calendar.walk("VEVENT")
    assert str(calendar["METHOD"]) == ("CANCEL" if cancelled else "REQUEST")
    assert (str(event["UID"]), int(event["SEQUENCE"])) == (f"session-{session_id}@binome", 3)
    assert str(event["DTSTART"].params["TZID"]) == "America/Sao_Paulo"
    assert event.decoded("DTSTART") == datetime(2027, 3, 12, 9, tzinfo=UTC)
    assert calendar.walk("VTIMEZONE"), "the recipient's zone travels with the invite"


def test_only_non_essential_kinds_can_be_turned_off() -> None:
    assert Kind.SESSION_SCHEDULED in ESSENTIAL and Kind.SESSION_REMINDER not in ESSENTIAL
    assert not wanted(Kind.SESSION_REMINDER, ["session_reminder"])
    assert wanted(Kind.SESSION_SCHEDULED, ["session_scheduled"])  # stored by mistake: still sent


def test_the_language_is_the_chosen_one_else_the_first_known_of_the_profile() -> None:
    assert language_for("de", ["fr", "en"]) == "de"
    assert language_for(None, ["it", "PT", "en"]) == "pt"
    assert language_for(None, ["it"]) == "en"


def test_the_mail_server_url(tmp_path: Path) -> None:
    plain = SmtpServer("smtp://mail.example.org:2525")
    assert (plain.hostname, plain.port, plain.use_tls, plain.start_tls, plain.username) == (
        "mail.example.org", 2525, False, False, None)
    tls = SmtpServer("smtps://bin%40ome:s%3Acret@mail.example.org")
    assert (tls.port, tls.use_tls, tls.username, tls.password) == (465, True, "bin@ome", "s:cret")
    assert "s:cret" not in tls.where and "cret" not in tls.where
    assert SmtpServer("smtp://mail.example.org:587?starttls=true").start_tls
    with pytest.raises(ValueError):
        SmtpServer("http://mail.example.org")
    folder = mailer_from(None, tmp_path)
    assert isinstance(folder, MailFolder) and folder.where == str(tmp_path / "mail")
