"""Sessions' part of a participant's GDPR export (libs/gdpr/export.py): the
pairs it is in, their sessions (with the pair's notes), the check-ins it
recorded itself and, for a mentor, its time entries per month. From this
service's own tables only; another organisation's participant is unknown."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.auth.principal import Principal
from libs.eventstore.migrations import check_schema_name


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
