"""Evaluation's part of a participant's GDPR export (libs/gdpr/export.py):
its assignments with their answers, its own free text and its committed
actions. From this service's own tables only; another organisation's
participant is unknown."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.auth.principal import Principal
from libs.eventstore.migrations import check_schema_name


class Export:
    def __init__(self, schema: str) -> None:
        s = check_schema_name(schema)
        self._sql_assignments = f"""
            SELECT doc::text FROM {s}.assignments WHERE organisation = $1 AND participant_id = $2 ORDER BY row_id"""

    async def collect(self, db: asyncpg.Pool, who: Principal, participant_id: UUID) -> dict[str, Any] | None:
        docs = [orjson.loads(r[0]) for r in await db.fetch(self._sql_assignments, who.organisation, participant_id)]
        if not docs:
            return None
        actions = [
            {"assignment_id": d["assignment_id"], **action} for d in docs for action in (d.get("actions") or [])
        ]
        return {"assignments": docs, "committed_actions": actions}
