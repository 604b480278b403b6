"""Sessions' part of a participant's GDPR export (libs/gdpr/export.py): the
pairs it is in, their sessions (with the pair's notes), the check-ins it
recorded itself and, for a mentor, its time entries per month. From this
service's own tables only; another organisation's participant is unknown."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.auth.principal import Principal
from libs.events.contexts.sessions import Member, SessionFormat
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.export import ActorExport, ExportPart


class PairExport(ExportPart):
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID
    status: str
    updated_at: datetime


class ChangeExport(ExportPart):
    """When a session changed and who changed it."""

    at: datetime
    by: ActorExport


class MoveExport(ChangeExport):
    moved_by: Member
    previous_starts_at: datetime
    starts_at: datetime
    duration_minutes: int


class CancellationExport(ChangeExport):
    cancelled_by: Member
    reason: str
    notice_hours: float
    late: bool


class HeldExport(ChangeExport):
    held_at: datetime
    actual_minutes: int
    preparation_minutes: int
    topics_covered: list[str]
    note: str | None
    sequence_in_pair: int


class NoShowExport(ChangeExport):
    absent: Member
    reported_by: Member


class SessionExport(ExportPart):
    """A session's document as the read model keeps it (adapters/projector.session_doc)."""

    session_id: UUID
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID
    scheduled_by: Member
    starts_at: datetime
    duration_minutes: int
    format: SessionFormat
    planned_topics: list[str]
    status: str
    scheduled: ChangeExport
    moves: list[MoveExport]
    cancellation: CancellationExport | None
    held: HeldExport | None
    no_show: NoShowExport | None
    version: int
    updated_at: datetime
    updated_by: ActorExport


class CheckInExport(ExportPart):
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID
    check_in_id: UUID
    member: Member
    mood: int
    blockers: str | None
    next_step: str | None
    recorded_at: datetime
    recorded_by: ActorExport


class MonthExport(ExportPart):
    """A mentor's time in one month (``month``: ``YYYY-MM``)."""

    month: str
    programme_id: UUID
    country: str
    budget_minutes: int
    total_minutes: int
    session_minutes: int
    preparation_minutes: int
    entries: int
    over_budget: bool


class SessionsExport(ExportPart):
    """Every field ``Export.collect`` returns (an undeclared one is an error)."""

    pairs: list[PairExport]
    sessions: list[SessionExport]
    check_ins: list[CheckInExport]
    time_entries: list[MonthExport]


def _rows(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [orjson.loads(r[0]) for r in rows]


class Export:
    def __init__(self, schema: str) -> None:
        s = check_schema_name(schema)
        self._sql_pairs = f"""
            SELECT jsonb_build_object('pair_id', pair_id, 'programme_id', programme_id, 'wave_id', wave_id,
                                      'country', country, 'mentee_id', mentee_id, 'mentor_id', mentor_id,
                                      'status', status, 'updated_at', updated_at)::text
            FROM {s}.pairs WHERE organisation = $1 AND (mentee_id = $2 OR mentor_id = $2) ORDER BY updated_at"""
        self._sql_sessions = f"""
            SELECT doc::text FROM {s}.sessions
            WHERE organisation = $1 AND (mentee_id = $2 OR mentor_id = $2) ORDER BY starts_at, row_id"""
        self._sql_check_ins = f"""
            SELECT doc::text FROM {s}.check_ins
            WHERE organisation = $1 AND ((member = 'mentee' AND mentee_id = $2) OR (member = 'mentor' AND mentor_id = $2))
            ORDER BY row_id"""
        self._sql_months = f"""
            SELECT jsonb_build_object('month', to_char(month, 'YYYY-MM'), 'programme_id', programme_id,
                                      'country', country, 'budget_minutes', budget_minutes,
                                      'total_minutes', total_minutes, 'session_minutes', session_minutes,
                                      'preparation_minutes', preparation_minutes, 'entries', entries,
                                      'over_budget', over_budget)::text
            FROM {s}.mentor_months WHERE organisation = $1 AND mentor_id = $2 ORDER BY month"""

    async def collect(self, db: asyncpg.Pool, who: Principal, participant_id: UUID) -> dict[str, Any] | None:
        args = (who.organisation, participant_id)
        part = {
            "pairs": _rows(await db.fetch(self._sql_pairs, *args)),
            "sessions": _rows(await db.fetch(self._sql_sessions, *args)),
            "check_ins": _rows(await db.fetch(self._sql_check_ins, *args)),
            "time_entries": _rows(await db.fetch(self._sql_months, *args)),
        }
        return part if any(part.values()) else None
