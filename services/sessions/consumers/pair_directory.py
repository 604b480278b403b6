"""The consumer that teaches sessions about the world: which pairs exist and
whether they are still formed (matching), and each programme's themes
(enrollment), and who must be forgotten (GDPR: ``ParticipantErased`` from
enrollment, ``PairNotesExpired`` from matching; ``adapters/erasure.py``).
Run by the consumer runtime (libs/messaging/consumer.py), which
makes it idempotent and crash-safe; it keeps only what sessions needs.

A pair's events come in stream order (key = pair id), and every one of them
names the whole pair, so each is an upsert guarded by the stream version: a
replayed older event never brings a dissolved pair back.
"""

from __future__ import annotations

import asyncpg

from libs.events.contexts.enrollment import ParticipantErased, ProgrammeCreated, ProgrammeSettingsChanged
from libs.events.contexts.matching import PairCompleted, PairDissolved, PairEvent, PairFormed, PairNotesExpired
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.messaging.dispatch import Consumer
from services.sessions.adapters.erasure import FreeText
from services.sessions.domain.values import PairStatus

NAME = "sessions-pair-directory"


class PairDirectory(Consumer):
    """Read tables ``pairs`` and ``programmes`` of the sessions schema; one
    event at a time (the base's ``handle_batch``): few events of these
    contexts concern sessions (a pair's, a programme's, an erasure), so a
    batch costs few statements. Every other event says nothing sessions needs."""

    name = NAME
    contexts = ("matching", "enrollment")

    def __init__(self, schema: str, name: str = NAME) -> None:
        self.name = name  # the consumer group (tests give each environment its own)
        s = self.schema = check_schema_name(schema)
        self.free_text = FreeText(s)
        self._sql_pair = f"""
            INSERT INTO {s}.pairs (pair_id, organisation, programme_id, wave_id, country, mentee_id, mentor_id,
                                   mentor_country, status, sequence, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (pair_id) DO UPDATE SET status = EXCLUDED.status, sequence = EXCLUDED.sequence,
                                                updated_at = EXCLUDED.updated_at
            WHERE {s}.pairs.sequence < EXCLUDED.sequence"""
        self._sql_programme = f"""
            INSERT INTO {s}.programmes (programme_id, organisation, themes, sequence) VALUES ($1, $2, $3, $4)
            ON CONFLICT (programme_id) DO UPDATE SET themes = EXCLUDED.themes, sequence = EXCLUDED.sequence
            WHERE {s}.programmes.sequence < EXCLUDED.sequence"""

    async def on_PairFormed(self, conn: asyncpg.Connection, envelope: Envelope, event: PairFormed) -> None:
        await self._pair(conn, envelope, event, PairStatus.FORMED)

    async def on_PairDissolved(self, conn: asyncpg.Connection, envelope: Envelope, event: PairDissolved) -> None:
        await self._pair(conn, envelope, event, PairStatus.DISSOLVED)

    async def on_PairCompleted(self, conn: asyncpg.Connection, envelope: Envelope, event: PairCompleted) -> None:
        await self._pair(conn, envelope, event, PairStatus.COMPLETED)

    async def _pair(self, conn: asyncpg.Connection, envelope: Envelope, event: PairEvent, status: PairStatus) -> None:
        people = event.people
        await conn.execute(
            self._sql_pair,
            event.pair_id,
            envelope.tenant,
            event.programme_id,
            event.wave_id,
            event.country,
            people.mentee_id,
            people.mentor_id,
            people.mentor_country,
            status.value,
            envelope.sequence,
            envelope.time,
        )

    async def on_ProgrammeCreated(self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeCreated) -> None:
        await self._programme(conn, envelope, event)

    async def on_ProgrammeSettingsChanged(
        self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeSettingsChanged
    ) -> None:
        await self._programme(conn, envelope, event)

    async def _programme(
        self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeCreated | ProgrammeSettingsChanged
    ) -> None:
        themes = sorted(theme.code for theme in event.settings.themes)
        await conn.execute(self._sql_programme, event.programme_id, envelope.tenant, themes, envelope.sequence)

    async def on_ParticipantErased(self, conn: asyncpg.Connection, envelope: Envelope, event: ParticipantErased) -> None:
        await self.free_text.forget_participant(conn, event.participant_id, envelope.time)

    async def on_PairNotesExpired(self, conn: asyncpg.Connection, envelope: Envelope, event: PairNotesExpired) -> None:
        await self.free_text.forget_pair_notes(conn, event.pair_id, envelope.time)

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.schema}.pairs, {self.schema}.programmes, {self.schema}.forgotten")
