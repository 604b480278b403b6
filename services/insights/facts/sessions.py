"""Sessions events -> sessions, check-ins, mentors' months.

A session's stream starts with ``SessionScheduled``; its end (held,
cancelled, no-show) is one update. A held session is upserted all the same:
a meeting logged after the fact is still a meeting.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.events.contexts import sessions as ev
from libs.events.envelope import Envelope


async def _month(
    conn: asyncpg.Connection, s: str, e: ev.MentorBudgetEvent, total: int, exceeded_at
) -> list[UUID]:
    """Upsert the mentor's month; every pair of the mentor is touched (its
    health names an over-budget mentor)."""
    await conn.execute(
        f"""INSERT INTO {s}.mentor_months (mentor_id, month, budget_minutes, total_minutes, exceeded_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (mentor_id, month) DO UPDATE SET
                budget_minutes = EXCLUDED.budget_minutes,
                total_minutes = GREATEST(mentor_months.total_minutes, EXCLUDED.total_minutes),
                exceeded_at = COALESCE(mentor_months.exceeded_at, EXCLUDED.exceeded_at)""",
        e.mentor_id, e.month, e.budget_minutes, total, exceeded_at,
    )
    rows = await conn.fetch(f"SELECT pair_id FROM {s}.pairs WHERE mentor_id = $1", e.mentor_id)
    return [r["pair_id"] for r in rows]


class SessionsFacts:
    """Sessions events -> sessions, check-ins, mentor months."""

    schema: str

    async def on_SessionScheduled(self, conn: asyncpg.Connection, env: Envelope, e: ev.SessionScheduled) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"""INSERT INTO {s}.sessions (session_id, pair_id, starts_at, status) VALUES ($1, $2, $3, 'scheduled')
                ON CONFLICT (session_id) DO NOTHING""",
            e.session_id, e.pair_id, e.starts_at,
        )
        return [e.pair_id]

    async def on_SessionMoved(self, conn: asyncpg.Connection, env: Envelope, e: ev.SessionMoved) -> list[UUID]:
        s = self.schema
        await conn.execute(f"UPDATE {s}.sessions SET starts_at = $2 WHERE session_id = $1", e.session_id, e.starts_at)
        return [e.pair_id]

    async def on_SessionCancelled(self, conn: asyncpg.Connection, env: Envelope, e: ev.SessionCancelled) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"UPDATE {s}.sessions SET status = 'cancelled', late = $2 WHERE session_id = $1", e.session_id, e.late
        )
        return [e.pair_id]

    async def on_SessionHeld(self, conn: asyncpg.Connection, env: Envelope, e: ev.SessionHeld) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"""INSERT INTO {s}.sessions (session_id, pair_id, starts_at, status, held_at, actual_minutes)
                VALUES ($1, $2, $3, 'held', $3, $4)
                ON CONFLICT (session_id) DO UPDATE SET status = 'held', held_at = $3, actual_minutes = $4""",
            e.session_id, e.pair_id, e.held_at, e.actual_minutes,
        )
        return [e.pair_id]

    async def on_SessionNoShow(self, conn: asyncpg.Connection, env: Envelope, e: ev.SessionNoShow) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"UPDATE {s}.sessions SET status = 'no_show', absent = $2 WHERE session_id = $1", e.session_id, e.absent.value
        )
        return [e.pair_id]

    async def on_CheckInRecorded(self, conn: asyncpg.Connection, env: Envelope, e: ev.CheckInRecorded) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"""INSERT INTO {s}.check_ins (check_in_id, pair_id, member, mood, recorded_at) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (check_in_id) DO NOTHING""",
            e.check_in_id, e.pair_id, e.member.value, e.mood, env.time,
        )
        return [e.pair_id]

    async def on_MentorTimeLogged(self, conn: asyncpg.Connection, env: Envelope, e: ev.MentorTimeLogged) -> list[UUID]:
        s = self.schema
        return await _month(conn, s, e, e.total_minutes, None)

    async def on_MentorBudgetExceeded(self, conn: asyncpg.Connection, env: Envelope, e: ev.MentorBudgetExceeded) -> list[UUID]:
        s = self.schema
        return await _month(conn, s, e, e.total_minutes, env.time)
