"""GDPR in evaluation's read tables: an erased participant's free text goes.

What a person typed (``free_text`` answers, committed-action descriptions) is
sealed in the log with the person's key, which erasure shreds; here every
such value of the person's assignments reads ``[erased]``. What results need
stays: scale answers, choices, action statuses and counts, under the
participant's random id, which no longer leads to anyone (the person's name,
e-mail, HR references and free text are gone from every service). Their
aggregates remain withheld below the programme's k. Stored idempotent
responses naming the person are dropped. ``forgotten`` remembers whom, so a
rebuild of the own read tables drops it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.api.idempotency import IdempotencyKeys
from libs.events.envelope import Envelope
from libs.events.registry import registry
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.personal import ERASED


def _erased(value: Any) -> Any:
    if isinstance(value, str):
        return ERASED
    if isinstance(value, list):
        return [_erased(v) for v in value]
    if isinstance(value, dict):
        return {k: _erased(v) for k, v in value.items()}
    return value


def without_personal_values(envelope: Envelope) -> Envelope:
    """``envelope`` with every personal value withheld (``[erased]``): for
    copies kept only for their ids and facts (deferred triggers)."""
    model = registry.models.get(envelope.type)
    fields = model.personal_fields & envelope.data.keys() if model is not None else set()
    if not fields:
        return envelope
    data = {k: _erased(v) if k in fields else v for k, v in envelope.data.items()}
    return envelope.model_copy(update={"data": data})


class FreeText:
    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        self.keys = IdempotencyKeys(s)
        self._sql_assignments = f"""
            UPDATE {s}.assignments SET doc = doc
                || CASE WHEN jsonb_typeof(doc -> 'free_text') = 'object' THEN jsonb_build_object('free_text',
                        (SELECT coalesce(jsonb_object_agg(k, to_jsonb($2::text)), '{{}}'::jsonb)
                         FROM jsonb_object_keys(doc -> 'free_text') AS k))
                        ELSE '{{}}'::jsonb END
                || CASE WHEN jsonb_typeof(doc -> 'actions') = 'array' THEN jsonb_build_object('actions',
                        (SELECT coalesce(jsonb_agg(a || jsonb_build_object('description', $2::text) ORDER BY i),
                                         '[]'::jsonb)
                         FROM jsonb_array_elements(doc -> 'actions') WITH ORDINALITY AS t(a, i)))
                        ELSE '{{}}'::jsonb END
            WHERE participant_id = $1"""
        self._sql_remember = f"""
            INSERT INTO {s}.forgotten (participant_id, at) VALUES ($1, $2) ON CONFLICT DO NOTHING"""

    async def forget_participant(self, conn: asyncpg.Connection, participant_id: UUID, at: datetime) -> None:
        await conn.execute(self._sql_remember, participant_id, at)
        await self._participant(conn, participant_id)

    async def apply_again(self, conn: asyncpg.Connection) -> int:
        ids = [r[0] for r in await conn.fetch(f"SELECT participant_id FROM {self.schema}.forgotten")]
        for participant_id in ids:
            await self._participant(conn, participant_id)
        return len(ids)

    async def _participant(self, conn: asyncpg.Connection, participant_id: UUID) -> None:
        await conn.execute(self._sql_assignments, participant_id, ERASED)
        await self.keys.forget(conn, str(participant_id))

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.schema}.forgotten")
