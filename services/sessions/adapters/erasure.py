"""GDPR in the sessions read tables: drop free text that must be gone.

Sessions' free text (a cancellation reason, a held session's note, a
check-in's blockers and next step) is sealed in the log with the pair's key.
When a participant is erased (``ParticipantErased``: every pair it was in) or
a pair's notes pass their retention (``PairNotesExpired``), the key is
shredded, and this module anonymises the read tables: each such value reads
``[erased]``, while what is not free text (status, times, moods, minutes)
stays for the pair's and the programme's figures. Stored idempotent
responses that name the person or pair are dropped too. ``forgotten``
remembers whom, so that a rebuild of the own read tables from the log
(``binome replay sessions read-tables``) drops them again.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from libs.api.idempotency import IdempotencyKeys
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.personal import ERASED

PARTICIPANT = "participant"
PAIR_NOTES = "pair_notes"


class FreeText:
    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        self.keys = IdempotencyKeys(s)
        sessions = f"""
            UPDATE {s}.sessions SET doc = doc
                || CASE WHEN jsonb_typeof(doc -> 'cancellation' -> 'reason') = 'string'
                        THEN jsonb_build_object('cancellation', (doc -> 'cancellation')
                                                || jsonb_build_object('reason', $2::text))
                        ELSE '{{}}'::jsonb END
                || CASE WHEN jsonb_typeof(doc -> 'held' -> 'note') = 'string'
                        THEN jsonb_build_object('held', (doc -> 'held') || jsonb_build_object('note', $2::text))
                        ELSE '{{}}'::jsonb END"""
        check_ins = f"""
            UPDATE {s}.check_ins SET doc = doc
                || CASE WHEN jsonb_typeof(doc -> 'blockers') = 'string'
                        THEN jsonb_build_object('blockers', $2::text) ELSE '{{}}'::jsonb END
                || CASE WHEN jsonb_typeof(doc -> 'next_step') = 'string'
                        THEN jsonb_build_object('next_step', $2::text) ELSE '{{}}'::jsonb END"""
        self._by_participant = [f"{sql} WHERE mentee_id = $1 OR mentor_id = $1" for sql in (sessions, check_ins)]
        self._by_pair = [f"{sql} WHERE pair_id = $1" for sql in (sessions, check_ins)]
        self._sql_remember = f"""
            INSERT INTO {s}.forgotten (subject_id, kind, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"""
        self._sql_all = f"SELECT subject_id, kind FROM {s}.forgotten"

    async def forget_participant(self, conn: asyncpg.Connection, participant_id: UUID, at: datetime) -> None:
        await conn.execute(self._sql_remember, participant_id, PARTICIPANT, at)
        await self._participant(conn, participant_id)

    async def forget_pair_notes(self, conn: asyncpg.Connection, pair_id: UUID, at: datetime) -> None:
        await conn.execute(self._sql_remember, pair_id, PAIR_NOTES, at)
        await self._pair(conn, pair_id)

    async def apply_again(self, conn: asyncpg.Connection) -> int:
        """After a rebuild from the log: drop again what was dropped."""
        rows = await conn.fetch(self._sql_all)
        for row in rows:
            await (self._participant if row["kind"] == PARTICIPANT else self._pair)(conn, row["subject_id"])
        return len(rows)

    async def _participant(self, conn: asyncpg.Connection, participant_id: UUID) -> None:
        for sql in self._by_participant:
            await conn.execute(sql, participant_id, ERASED)
        await self.keys.forget(conn, str(participant_id))

    async def _pair(self, conn: asyncpg.Connection, pair_id: UUID) -> None:
        for sql in self._by_pair:
            await conn.execute(sql, pair_id, ERASED)
        await self.keys.forget(conn, str(pair_id))

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.schema}.forgotten")
