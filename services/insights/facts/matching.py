"""Matching events -> pairs. Every event of a pair's stream carries the whole
``PairRef``, so the row is upserted by whichever event comes, and the status
only moves forward along the pair's life (proposed -> formed -> ended)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import orjson

from libs.events.contexts import matching as ev
from libs.events.envelope import Envelope

_UPSERT = """INSERT INTO {s}.pairs (pair_id, organisation, programme_id, wave_id, country, mentee_id, mentor_id,
                 mentor_wave_id, mentor_country, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'proposed') ON CONFLICT (pair_id) DO NOTHING"""


async def _ensure(conn: asyncpg.Connection, s: str, env: Envelope, e: ev.PairEvent) -> None:
    people = e.people
    await conn.execute(
        _UPSERT.format(s=s), e.pair_id, env.tenant, e.programme_id, e.wave_id, e.country.upper(),
        people.mentee_id, people.mentor_id, people.mentor_wave_id, people.mentor_country.upper(),
    )


class MatchingFacts:
    """Matching events -> pairs."""

    schema: str

    async def on_PairProposed(self, conn: asyncpg.Connection, env: Envelope, e: ev.PairProposed) -> list[UUID]:
        s = self.schema
        await _ensure(conn, s, env, e)
        criteria = {c.criterion: c.raw for c in e.breakdown}
        await conn.execute(
            f"UPDATE {s}.pairs SET score = $2, criteria = $3::jsonb, proposed_at = $4 WHERE pair_id = $1",
            e.pair_id, e.score, orjson.dumps(criteria).decode(), env.time,
        )
        return [e.pair_id]

    async def on_PairAccepted(self, conn: asyncpg.Connection, env: Envelope, e: ev.PairAccepted) -> list[UUID]:
        s = self.schema
        await _ensure(conn, s, env, e)  # one side's acceptance changes nothing insights shows
        return []

    async def on_PairDeclined(self, conn: asyncpg.Connection, env: Envelope, e: ev.PairDeclined) -> list[UUID]:
        s = self.schema
        await _ensure(conn, s, env, e)
        await conn.execute(f"UPDATE {s}.pairs SET status = 'declined', ended_at = $2 WHERE pair_id = $1", e.pair_id, env.time)
        return [e.pair_id]

    async def on_PairFormed(self, conn: asyncpg.Connection, env: Envelope, e: ev.PairFormed) -> list[UUID]:
        s = self.schema
        await _ensure(conn, s, env, e)
        await conn.execute(
            f"UPDATE {s}.pairs SET status = 'formed', formed_at = $2, score = $3 WHERE pair_id = $1",
            e.pair_id, env.time, e.score,
        )
        return [e.pair_id]

    async def on_PairDissolved(self, conn: asyncpg.Connection, env: Envelope, e: ev.PairDissolved) -> list[UUID]:
        s = self.schema
        await _ensure(conn, s, env, e)
        await conn.execute(
            f"UPDATE {s}.pairs SET status = 'dissolved', ended_at = $2, dissolution_reason = $3 WHERE pair_id = $1",
            e.pair_id, env.time, e.reason.value,
        )
        return [e.pair_id]

    async def on_PairCompleted(self, conn: asyncpg.Connection, env: Envelope, e: ev.PairCompleted) -> list[UUID]:
        s = self.schema
        await _ensure(conn, s, env, e)
        await conn.execute(f"UPDATE {s}.pairs SET status = 'completed', ended_at = $2 WHERE pair_id = $1", e.pair_id, env.time)
        return [e.pair_id]
