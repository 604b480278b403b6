"""Queueing a message: who it is for (the recipients table, learned from
enrollment), whether they still want it (preferences, erasure), rendering it
in their language and time zone, and storing it with its ``MessageQueued``
event in the caller's transaction.

A message is named by (source event, recipient, kind): its id is derived
from them, so a redelivered event or a job run twice queues nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from typing import Any
from uuid import UUID

import asyncpg

from libs.events.contexts.notifications import MessageQueued
from libs.events.registry import new_envelope
from libs.eventstore.store import EventStore
from services.notifications.adapters import invites, mime
from services.notifications.adapters.rendering import render, when
from services.notifications.domain.kinds import WITH_INVITE, Kind, language_for, wanted
from services.notifications.service_layer.committees import Committee

SERVICE = "notifications"
_NAMESPACE = uuid.UUID("6f0c1a52-4d0e-4f5e-9d3a-0b7a4c1e2f10")


def message_id_of(source_event_id: str, recipient_id: UUID, kind: Kind) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"{source_event_id}/{recipient_id}/{kind.value}")


@dataclass(frozen=True)
class Recipient:
    participant_id: UUID
    email: str
    display_name: str
    language: str
    time_zone: str
    muted: tuple[str, ...]

    @property
    def address(self) -> Address:
        return Address(self.display_name, addr_spec=self.email)


@dataclass(frozen=True)
class Meeting:
    """What a session message says, and its calendar entry."""

    session_id: UUID
    starts_at: datetime
    duration_minutes: int
    sequence: int  # the iCalendar SEQUENCE: grows with each change
    cancelled: bool = False


class Messages:
    def __init__(self, store: EventStore, sender: str, clock: Callable[[], datetime]) -> None:
        self.store, self.sender, self.clock = store, sender, clock
        s = self.schema = store.schema
        self._sql_recipient = f"""
            SELECT r.participant_id, r.email, r.display_name, r.languages, r.time_zone,
                   p.language AS chosen, coalesce(p.muted_kinds, '{{}}') AS muted
            FROM {s}.recipients r LEFT JOIN {s}.preferences p USING (participant_id)
            WHERE r.participant_id = $1 AND r.organisation = $2"""
        self._sql_insert = f"""
            INSERT INTO {s}.messages (message_id, organisation, country, recipient_id, kind, language, with_invite,
                                      source_event_id, status, next_attempt_at, body, queued_at, named)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', now(), $9, $10, $11)
            ON CONFLICT DO NOTHING RETURNING message_id"""

    async def recipient(self, conn: asyncpg.Connection, organisation: str, participant_id: UUID) -> Recipient | None:
        """The person as the messages see them; None if unknown or erased."""
        row = await conn.fetchrow(self._sql_recipient, participant_id, organisation)
        if row is None:
            return None
        return Recipient(
            participant_id=row["participant_id"],
            email=row["email"],
            display_name=row["display_name"],
            language=language_for(row["chosen"], row["languages"]),
            time_zone=row["time_zone"],
            muted=tuple(row["muted"]),
        )

    async def to_pair(
        self,
        conn: asyncpg.Connection,
        *,
        organisation: str,
        country: str,
        kind: Kind,
        source_event_id: str,
        members: tuple[UUID, UUID],
        values: dict[str, Any] | None = None,
        meeting: Meeting | None = None,
        correlation_id: str | None = None,
    ) -> int:
        """One message to each member of a pair, naming the other; returns how many were queued."""
        people = [await self.recipient(conn, organisation, member) for member in members]
        queued = 0
        for me, other in ((people[0], people[1]), (people[1], people[0])):
            if me is None:
                continue
            queued += await self.queue(
                conn,
                organisation=organisation,
                country=country,
                kind=kind,
                source_event_id=source_event_id,
                recipient=me,
                other=other,
                values=values,
                meeting=meeting,
                correlation_id=correlation_id,
            )
        return queued

    async def to_one(
        self,
        conn: asyncpg.Connection,
        *,
        organisation: str,
        country: str,
        kind: Kind,
        source_event_id: str,
        participant_id: UUID,
        values: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> int:
        me = await self.recipient(conn, organisation, participant_id)
        if me is None:
            return 0
        return await self.queue(
            conn,
            organisation=organisation,
            country=country,
            kind=kind,
            source_event_id=source_event_id,
            recipient=me,
            values=values,
            correlation_id=correlation_id,
        )

    async def queue(
        self,
        conn: asyncpg.Connection,
        *,
        organisation: str,
        country: str,
        kind: Kind,
        source_event_id: str,
        recipient: Recipient,
        other: Recipient | None = None,
        values: dict[str, Any] | None = None,
        meeting: Meeting | None = None,
        correlation_id: str | None = None,
    ) -> int:
        """Render and store one message and its ``MessageQueued``; 0 when the
        recipient turned the kind off or it was queued already."""
        if not wanted(kind, recipient.muted):
            return 0
        language = recipient.language
        now = self.clock()
        fill = {
            "name": recipient.display_name,
            "other": other.display_name if other else "",
            **{key: self._localised(value, language, recipient.time_zone) for key, value in (values or {}).items()},
        }
        invite = method = None
        if meeting is not None:
            fill["when"] = when(meeting.starts_at, language, recipient.time_zone)
            fill["duration"] = meeting.duration_minutes
        rendered = render(kind, language, fill)
        if meeting is not None and kind in WITH_INVITE:
            method = "CANCEL" if meeting.cancelled else "REQUEST"
            attendees = [invites.Attendee(p.email, p.display_name) for p in (recipient, other) if p is not None]
            invite = invites.invite(
                session_id=meeting.session_id,
                sequence=meeting.sequence,
                cancelled=meeting.cancelled,
                starts_at=meeting.starts_at,
                duration_minutes=meeting.duration_minutes,
                summary=rendered.subject,
                organiser=invites.Attendee(self.sender, "Binome"),
                attendees=attendees,
                time_zone=recipient.time_zone,
                stamp=now,
            )
        message_id = message_id_of(source_event_id, recipient.participant_id, kind)
        body = mime.message(
            message_id=message_id,
            sender=self.sender,
            to=recipient.address,
            language=language,
            kind=kind.value,
            rendered=rendered,
            sent_at=now,
            invite=invite,
            method=method,
        ).as_bytes()
        return await self._store(
            conn,
            message_id=message_id,
            organisation=organisation,
            country=country,
            recipient_id=recipient.participant_id,
            kind=kind,
            language=language,
            with_invite=invite is not None,
            source_event_id=source_event_id,
            body=body,
            queued_at=now,
            named=[other.participant_id] if other else [],
            correlation_id=correlation_id,
        )

    async def to_committee(
        self, conn: asyncpg.Connection, *, committee: Committee, kind: Kind, source_event_id: str,
        values: dict[str, Any],
    ) -> int:
        """One message to every address of a committee (one mail, each address
        in To), in the committee's language; 0 when queued already."""
        now = self.clock()
        rendered = render(kind, committee.language, values)
        message_id = message_id_of(source_event_id, committee.committee_id, kind)
        body = mime.message(
            message_id=message_id,
            sender=self.sender,
            to=committee.to,
            language=committee.language,
            kind=kind.value,
            rendered=rendered,
            sent_at=now,
        ).as_bytes()
        return await self._store(
            conn,
            message_id=message_id,
            organisation=committee.organisation,
            country=committee.country,
            recipient_id=committee.committee_id,
            kind=kind,
            language=committee.language,
            with_invite=False,
            source_event_id=source_event_id,
            body=body,
            queued_at=now,
            named=[],
        )

    async def _store(
        self,
        conn: asyncpg.Connection,
        *,
        message_id: UUID,
        organisation: str,
        country: str,
        recipient_id: UUID,
        kind: Kind,
        language: str,
        with_invite: bool,
        source_event_id: str,
        body: bytes,
        queued_at: datetime,
        named: list[UUID],
        correlation_id: str | None = None,
    ) -> int:
        """Store one rendered message and its ``MessageQueued``; 0 when it exists already."""
        inserted = await conn.fetchval(
            self._sql_insert,
            message_id,
            organisation,
            country,
            recipient_id,
            kind.value,
            language,
            with_invite,
            source_event_id,
            body,
            queued_at,
            named,
        )
        if inserted is None:
            return 0
        event = MessageQueued(
            message_id=message_id,
            recipient_id=str(recipient_id),
            kind=kind.value,
            country=country,
            channel="email",
            language=language,
            source_event_id=source_event_id,
            with_invite=with_invite,
        )
        envelope = new_envelope(
            event,
            service=SERVICE,
            subject=str(message_id),
            tenant=organisation,
            country=country,
            correlationid=correlation_id,
            event_id=uuid.uuid5(message_id, "queued"),
        )
        await self.store.append(str(message_id), 0, [envelope], conn=conn)
        return 1

    @staticmethod
    def _localised(value: Any, language: str, time_zone: str) -> Any:
        """Dates in ``values`` read in the recipient's language and zone."""
        return when(value, language, time_zone) if isinstance(value, datetime) else value
