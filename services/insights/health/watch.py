"""The daily evaluation of pair health: the one place a pair's status
becomes a fact (``PairNeedsAttention``) instead of a read-time verdict.

Once a day on the platform clock (a ``libs.runtime.scheduler.ScheduledJob``,
so once per platform), every formed pair of every organisation is evaluated
with the same loading and rules as the API (``facts.pair_health``,
``rules.evaluate``); a pair whose status got worse into one that needs
attention (``rules.NEEDS_ATTENTION``) gets a ``PairNeedsAttention`` event in
insights' own event store, and its outbox publishes it. The day, the
statuses and the events are written in one transaction: a crash redoes the
whole day, and a day done is never done again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from libs.events.contexts.insights import PairNeedsAttention
from libs.events.registry import new_envelope
from libs.eventstore.store import EventStore
from services.insights.health.facts import PairHealth, PairScope, pair_health
from services.insights.health.rules import NEEDS_ATTENTION, Status

SERVICE = "insights"
#: Worse is higher; ``ended`` is outside the scale (an ended pair is nobody's worry).
_SEVERITY = {Status.HEALTHY: 0, Status.AT_RISK: 1, Status.DORMANT: 2}


def turned_worse(previous: Status, current: Status) -> bool:
    """Does going from ``previous`` to ``current`` need the committee's attention?"""
    if current not in NEEDS_ATTENTION:
        return False
    return _SEVERITY.get(current, 0) > _SEVERITY.get(previous, 0)


class HealthWatch:
    def __init__(self, pool: asyncpg.Pool, store: EventStore) -> None:
        self.pool, self.store = pool, store
        s = self.schema = store.schema
        self._sql_day = f"""INSERT INTO {s}.health_evaluations (evaluated_on, evaluated_at, pairs, changes)
                            VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING RETURNING evaluated_on"""
        self._sql_counts = f"UPDATE {s}.health_evaluations SET pairs = $2, changes = $3 WHERE evaluated_on = $1"
        self._sql_seen = f"SELECT pair_id, status, version FROM {s}.pair_health_watch"
        self._sql_upsert = f"""
            INSERT INTO {s}.pair_health_watch (pair_id, status, version, evaluated_on) VALUES ($1, $2, $3, $4)
            ON CONFLICT (pair_id) DO UPDATE SET status = EXCLUDED.status, version = EXCLUDED.version,
                evaluated_on = EXCLUDED.evaluated_on"""

    async def run_due(self, now: datetime) -> int:
        """Evaluate today's health if not done yet; returns how many pairs
        turned worse (0 also when today was done already)."""
        today = now.date()
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(self._sql_day, today, now) is None:
                return 0
            seen = {r["pair_id"]: (Status(r["status"]), r["version"]) for r in await conn.fetch(self._sql_seen)}
            pairs = await pair_health(conn, self.schema, PairScope(organisation=None), now)
            changes = 0
            for pair in pairs:
                previous, version = seen.get(pair.row["pair_id"], (Status.HEALTHY, 0))
                current = pair.verdict.status
                if turned_worse(previous, current):
                    await self._record(conn, pair, previous, version, now)
                    version += 1
                    changes += 1
                await conn.execute(self._sql_upsert, pair.row["pair_id"], current.value, version, today)
            await conn.execute(self._sql_counts, today, len(pairs), changes)
            return changes

    async def _record(
        self, conn: asyncpg.Connection, pair: PairHealth, previous: Status, version: int, now: datetime
    ) -> None:
        row = pair.row
        event = PairNeedsAttention(
            pair_id=row["pair_id"],
            programme_id=row["programme_id"],
            wave_id=row["wave_id"],
            country=row["country"],
            mentee_id=row["mentee_id"],
            mentor_id=row["mentor_id"],
            status=pair.verdict.status.value,
            previous_status=previous.value,
            reasons=[r.code for r in pair.verdict.reasons],
            evaluated_on=now.date(),
            evaluated_at=now,
        )
        envelope = new_envelope(
            event, service=SERVICE, subject=str(row["pair_id"]), tenant=row["organisation"], country=row["country"],
            event_id=uuid.uuid5(row["pair_id"], f"needs-attention/{now.date()}"),
        )
        # The pair's stream in insights' own store: its health changes.
        await self.store.append(str(row["pair_id"]), version, [envelope], conn=conn)
