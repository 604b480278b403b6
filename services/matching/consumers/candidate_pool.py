"""The candidate pool: matching's own copy of what enrollment says.

A ``Projection`` (libs/messaging/consumer.py) over ``binome.enrollment.events``
that keeps programmes (mode, settings), waves (country, region, committee,
status) and participants (role, profile, references, qualification,
withdrawal) in matching's schema. The runtime calls ``handle`` inside its
transaction and records the event as applied in the same one; the
``on_<EventClassName>`` methods are what matching reads (libs/messaging/dispatch.py).

A withdrawal (or a GDPR erasure, which also forgets the person's HR
references) ends the person's open pairs (``on_withdrawal``, given by the
service: a proposal is declined, a formed pair dissolved with reason
``left_programme``) in that same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from libs.database import jsonb
from libs.events.contexts.enrollment import (
    MentorQualificationAssessed,
    NeedsAnswered,
    ParticipantEnrolled,
    ParticipantErased,
    ParticipantEvent,
    ParticipantProfileUpdated,
    ParticipantWithdrew,
    ProgrammeCreated,
    ProgrammeSettingsChanged,
    WaveEnded,
    WaveEnrolmentClosed,
    WaveOpened,
)
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.messaging.dispatch import Consumer

#: Ends the open pairs of a person who left (withdrawal or erasure).
LeavingHook = Callable[[asyncpg.Connection, Envelope, ParticipantEvent], Awaitable[None]]

POOL_TABLES = ("programmes", "waves", "candidates")



class CandidatePool(Consumer):
    """One event at a time (the base's ``handle_batch``): a withdrawal runs
    ``on_withdrawal``, which reads the pool the earlier events wrote."""

    name = "matching-candidate-pool"
    contexts = ("enrollment",)

    def __init__(self, schema: str, on_withdrawal: LeavingHook) -> None:
        self.schema = s = check_schema_name(schema)
        self.leaving = on_withdrawal  # not an on_<Event> handler: the service's hook
        self._sql_programme = f"""
            INSERT INTO {s}.programmes (programme_id, organisation, mode, settings, version)
            VALUES ($1, $2, $3, $4::jsonb, $5)
            ON CONFLICT (programme_id) DO UPDATE SET
                mode = coalesce(EXCLUDED.mode, {s}.programmes.mode),
                settings = EXCLUDED.settings, version = EXCLUDED.version"""
        self._sql_wave = f"""
            INSERT INTO {s}.waves (wave_id, programme_id, organisation, country, region, committee, status,
                                   starts_on, version)
            VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8)"""
        self._sql_wave_status = f"UPDATE {s}.waves SET status = $2, version = $3 WHERE wave_id = $1"
        self._sql_enrolled = f"""
            INSERT INTO {s}.candidates (participant_id, organisation, programme_id, wave_id, country, role,
                                        profile, employee_ref, manager_ref, version)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)"""
        self._sql_profile = f"""
            UPDATE {s}.candidates SET profile = $2::jsonb, version = $3,
                manager_ref = CASE WHEN $5 THEN NULL ELSE coalesce($4, manager_ref) END
            WHERE participant_id = $1"""
        self._sql_themes_wanted = f"""
            UPDATE {s}.candidates SET profile = jsonb_set(profile, '{{themes_wanted}}', $2::jsonb), version = $3
            WHERE participant_id = $1"""
        self._sql_qualified = f"UPDATE {s}.candidates SET qualified = $2, version = $3 WHERE participant_id = $1"
        self._sql_withdrawn = f"UPDATE {s}.candidates SET withdrawn = true, version = $2 WHERE participant_id = $1"
        # Erasure: the person leaves the pool and its HR references are forgotten.
        self._sql_erased = f"""
            UPDATE {s}.candidates SET withdrawn = true, employee_ref = '', manager_ref = NULL, version = $2
            WHERE participant_id = $1"""

    async def on_ProgrammeCreated(self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeCreated) -> None:
        await self._programme(conn, envelope, event, event.mode.value)

    async def on_ProgrammeSettingsChanged(
        self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeSettingsChanged
    ) -> None:
        await self._programme(conn, envelope, event, None)  # the mode is set at creation only

    async def _programme(
        self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeCreated | ProgrammeSettingsChanged,
        mode: str | None,
    ) -> None:
        settings = jsonb(event.settings.model_dump(mode="json"))
        await conn.execute(self._sql_programme, event.programme_id, envelope.tenant, mode, settings, envelope.sequence)

    async def on_WaveOpened(self, conn: asyncpg.Connection, envelope: Envelope, event: WaveOpened) -> None:
        await conn.execute(
            self._sql_wave,
            event.wave_id,
            event.programme_id,
            envelope.tenant,
            event.country,
            event.region,
            event.committee,
            event.starts_on,
            envelope.sequence,
        )

    async def on_WaveEnrolmentClosed(self, conn: asyncpg.Connection, envelope: Envelope, event: WaveEnrolmentClosed) -> None:
        await conn.execute(self._sql_wave_status, event.wave_id, "enrolment_closed", envelope.sequence)

    async def on_WaveEnded(self, conn: asyncpg.Connection, envelope: Envelope, event: WaveEnded) -> None:
        await conn.execute(self._sql_wave_status, event.wave_id, "ended", envelope.sequence)

    async def on_ParticipantEnrolled(self, conn: asyncpg.Connection, envelope: Envelope, event: ParticipantEnrolled) -> None:
        await conn.execute(
            self._sql_enrolled,
            event.participant_id,
            envelope.tenant,
            event.programme_id,
            event.wave_id,
            event.country,
            event.role.value,
            jsonb(event.profile.model_dump(mode="json")),
            event.employee_ref,
            event.manager_ref,
            envelope.sequence,
        )

    async def on_ParticipantProfileUpdated(
        self, conn: asyncpg.Connection, envelope: Envelope, event: ParticipantProfileUpdated
    ) -> None:
        await conn.execute(
            self._sql_profile,
            event.participant_id,
            jsonb(event.profile.model_dump(mode="json")),
            envelope.sequence,
            event.manager_ref,
            event.manager_ref_removed,
        )

    async def on_NeedsAnswered(self, conn: asyncpg.Connection, envelope: Envelope, event: NeedsAnswered) -> None:
        themes = [t.model_dump(mode="json") for t in event.themes_wanted]
        await conn.execute(self._sql_themes_wanted, event.participant_id, jsonb(themes), envelope.sequence)

    async def on_MentorQualificationAssessed(
        self, conn: asyncpg.Connection, envelope: Envelope, event: MentorQualificationAssessed
    ) -> None:
        await conn.execute(self._sql_qualified, event.participant_id, event.qualified, envelope.sequence)

    async def on_ParticipantWithdrew(self, conn: asyncpg.Connection, envelope: Envelope, event: ParticipantWithdrew) -> None:
        await conn.execute(self._sql_withdrawn, event.participant_id, envelope.sequence)
        await self.leaving(conn, envelope, event)

    async def on_ParticipantErased(self, conn: asyncpg.Connection, envelope: Envelope, event: ParticipantErased) -> None:
        await conn.execute(self._sql_erased, event.participant_id, envelope.sequence)
        await self.leaving(conn, envelope, event)

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in POOL_TABLES)}")
