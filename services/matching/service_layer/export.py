"""Matching's part of a participant's GDPR export (libs/gdpr/export.py): its
copy in the candidate pool, its pairs (with scores and their breakdowns),
its proposals (declined or still open), the exclusions naming it and the
matching runs it was in (with its own outcome). From matching's own tables
and log only; another organisation's participant is unknown. The notes
(decline, dissolve, exclusion) live only in the log, sealed: each pair,
proposal and exclusion carries its own, opened (``notes``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.auth.principal import Principal
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore
from libs.gdpr.export import personal_values

PROPOSALS = ("proposed", "declined")


class Export:
    def __init__(self, schema: str, store: EventStore) -> None:
        s = check_schema_name(schema)
        self.store = store
        self._sql_candidate = f"""
            SELECT jsonb_build_object('programme_id', programme_id, 'wave_id', wave_id, 'country', country,
                                      'role', role, 'profile', profile, 'employee_ref', employee_ref,
                                      'manager_ref', manager_ref, 'qualified', qualified,
                                      'withdrawn', withdrawn)::text
            FROM {s}.candidates WHERE organisation = $1 AND participant_id = $2"""
        self._sql_pairs = f"""
            SELECT status, doc::text FROM {s}.pairs
            WHERE organisation = $1 AND (mentee_id = $2 OR mentor_id = $2) ORDER BY row_id"""
        self._sql_interests = f"""
            SELECT doc::text FROM {s}.interests
            WHERE organisation = $1 AND (mentee_id = $2 OR mentor_id = $2) ORDER BY interest_id"""
        self._sql_exclusions = f"""
            SELECT doc::text FROM {s}.exclusions
            WHERE organisation = $1 AND (mentee_id = $2 OR mentor_id = $2) ORDER BY exclusion_id"""
        # A run names the person among its inputs; only its own outcome is exported.
        self._sql_runs = f"""
            SELECT jsonb_build_object(
                'run_id', run_id, 'programme_id', programme_id, 'wave_ids', wave_ids,
                'completed_at', doc -> 'completed_at', 'objective', doc -> 'objective',
                'pairs', coalesce((SELECT jsonb_agg(p) FROM jsonb_array_elements(doc -> 'pairs') p
                                   WHERE p ->> 'mentee_id' = $2 OR p ->> 'mentor_id' = $2), '[]'),
                'unmatched', coalesce((SELECT jsonb_agg(u) FROM jsonb_array_elements(doc -> 'unmatched') u
                                       WHERE u ->> 'participant_id' = $2), '[]'))::text
            FROM {s}.runs
            WHERE organisation = $1 AND (doc -> 'inputs' -> 'mentee_ids' ? $2
                                         OR doc -> 'inputs' -> 'mentor_ids' ? $2)
            ORDER BY row_id"""

    async def collect(self, db: asyncpg.Pool, who: Principal, participant_id: UUID) -> dict[str, Any] | None:
        args = (who.organisation, participant_id)
        candidate = await db.fetchval(self._sql_candidate, *args)
        pairs = await db.fetch(self._sql_pairs, *args)
        docs = [(r[0], orjson.loads(r[1])) for r in pairs]
        exclusions = [orjson.loads(r[0]) for r in await db.fetch(self._sql_exclusions, *args)]
        notes = await personal_values(
            self.store, [str(d["pair_id"]) for _, d in docs] + [str(d["exclusion_id"]) for d in exclusions]
        )
        for doc in [d for _, d in docs] + exclusions:
            doc["notes"] = notes.get(str(doc.get("pair_id") or doc.get("exclusion_id")), [])
        part = {
            "candidate": orjson.loads(candidate) if candidate else None,
            "pairs": [d for status, d in docs if status not in PROPOSALS],
            "proposals": [d for status, d in docs if status in PROPOSALS],
            "exclusions": exclusions,  # lifted ones too (``lifted_at``), with every note and reason
            "interests": [orjson.loads(r[0]) for r in await db.fetch(self._sql_interests, *args)],
            "runs": [orjson.loads(r[0]) for r in await db.fetch(self._sql_runs, who.organisation, str(participant_id))],
        }
        return part if any(part.values()) else None
