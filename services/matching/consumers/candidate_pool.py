"""The candidate pool: matching's own copy of what enrollment says.

A ``Projection`` (libs/messaging/consumer.py) over ``binome.enrollment.events``
that keeps programmes (mode, settings), waves (country, region, committee,
status) and participants (role, profile, references, qualification,
withdrawal) in matching's schema. The runtime calls ``handle`` inside its
transaction and records the event as applied in the same one.

A withdrawal (or a GDPR erasure, which also forgets the person's HR
references) ends the person's open pairs (``on_withdrawal``, given by the
service: a proposal is declined, a formed pair dissolved with reason
``left_programme``) in that same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import orjson

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
from libs.events.registry import DomainEvent
from libs.eventstore.migrations import check_schema_name
from libs.messaging.consumer import handle_each

#: Ends the open pairs of a person who left (withdrawal or erasure).
LeavingHook = Callable[[asyncpg.Connection, Envelope, ParticipantEvent], Awaitable[None]]

POOL_TABLES = ("programmes", "waves", "candidates")


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class CandidatePool:
    name = "matching-candidate-pool"
    contexts = ("enrollment",)

    def __init__(self, schema: str, on_withdrawal: LeavingHook) -> None:
        self.schema = s = check_schema_name(schema)
        self.on_withdrawal = on_withdrawal
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

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        version = envelope.sequence
        if isinstance(event, (ProgrammeCreated, ProgrammeSettingsChanged)):
            # The mode is set at creation only: a settings change keeps it.
            mode = event.mode.value if isinstance(event, ProgrammeCreated) else None
            settings = _json(event.settings.model_dump(mode="json"))
            await conn.execute(self._sql_programme, event.programme_id, envelope.tenant, mode, settings, version)
        elif isinstance(event, WaveOpened):
            await conn.execute(
                self._sql_wave,
                event.wave_id,
                event.programme_id,
                envelope.tenant,
                event.country,
                event.region,
                event.committee,
                event.starts_on,
                version,
            )
        elif isinstance(event, (WaveEnrolmentClosed, WaveEnded)):
            status = "ended" if isinstance(event, WaveEnded) else "enrolment_closed"
            await conn.execute(self._sql_wave_status, event.wave_id, status, version)
        elif isinstance(event, ParticipantEnrolled):
            await conn.execute(
                self._sql_enrolled,
                event.participant_id,
                envelope.tenant,
                event.programme_id,
                event.wave_id,
                event.country,
                event.role.value,
                _json(event.profile.model_dump(mode="json")),
                event.employee_ref,
                event.manager_ref,
                version,
            )
        elif isinstance(event, ParticipantProfileUpdated):
            await conn.execute(
                self._sql_profile,
                event.participant_id,
                _json(event.profile.model_dump(mode="json")),
                version,
                event.manager_ref,
                event.manager_ref_removed,
            )
        elif isinstance(event, NeedsAnswered):
            themes = [t.model_dump(mode="json") for t in event.themes_wanted]
            await conn.execute(self._sql_themes_wanted, event.participant_id, _json(themes), version)
        elif isinstance(event, MentorQualificationAssessed):
            await conn.execute(self._sql_qualified, event.participant_id, event.qualified, version)
        elif isinstance(event, (ParticipantWithdrew, ParticipantErased)):
            sql = self._sql_erased if isinstance(event, ParticipantErased) else self._sql_withdrawn
            await conn.execute(sql, event.participant_id, version)
            await self.on_withdrawal(conn, envelope, event)
        # Other enrollment events (none today) carry nothing matching needs.

    async def handle_batch(self, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, DomainEvent]]) -> None:
        """One event at a time: a withdrawal runs ``on_withdrawal`` (it reads the
        pool the earlier events wrote)."""
        await handle_each(self, conn, items)

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in POOL_TABLES)}")
