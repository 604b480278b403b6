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
from libs.events.contexts.enrollment import MatchingObjective, ParticipantProfile, Role
from libs.events.contexts.matching import (
    CriterionPoints,
    DissolutionReason,
    PairRef,
    ProposalOrigin,
    RunPair,
    RunUnmatched,
    Side,
)
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore
from libs.gdpr.export import ActorExport, ExportPart, Instant, personal_values

PROPOSALS = ("proposed", "declined")


class CandidateExport(ExportPart):
    """The participant in matching's candidate pool (its copy of enrollment's facts)."""

    programme_id: UUID
    wave_id: UUID
    country: str
    role: Role
    profile: ParticipantProfile
    employee_ref: str
    manager_ref: str | None
    qualified: bool
    withdrawn: bool


class NoteExport(ExportPart):
    """What a person wrote, kept only in the log (sealed): the event's type,
    its time and its personal values, opened (libs/gdpr/export.personal_values)."""

    type: str
    time: Instant
    note: str | None = None  # PairDeclined, PairDissolved, PairExcluded (absent when none was given)
    reason: str | None = None  # ExclusionLifted


class EndedExport(ExportPart):
    at: Instant
    by: ActorExport
    side: Side | None
    reason: DissolutionReason | None


class NotesExpiredExport(ExportPart):
    at: Instant
    retention_days: int


class PairExport(ExportPart):
    """A pair's document as the read model keeps it (adapters/read_tables.pair_doc),
    with its notes. ``confirmed_by`` and ``notes_expired`` are absent until set."""

    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    people: PairRef
    origin: ProposalOrigin
    run_id: UUID | None
    score: float
    breakdown: list[CriterionPoints]
    next_choices: list[UUID]
    follows_pair_id: UUID | None
    status: str
    accepted_by: list[Side]
    confirmed_by: Side | None = None
    proposed_at: Instant
    proposed_by: ActorExport
    formed_at: Instant | None
    ended: EndedExport | None
    notes_expired: NotesExpiredExport | None = None
    version: int
    updated_at: Instant
    updated_by: ActorExport
    notes: list[NoteExport]


class ExclusionExport(ExportPart):
    """An HR exclusion naming the participant; ``lifted_at``/``lifted_by`` once lifted."""

    exclusion_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str
    excluded_at: Instant
    excluded_by: ActorExport
    lifted_at: Instant | None = None
    lifted_by: ActorExport | None = None
    notes: list[NoteExport]


class InterestExport(ExportPart):
    """A mentor's interest in a mentee."""

    interest_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str
    expressed_at: Instant


class RunExport(ExportPart):
    """A matching run the participant was an input of: only its own outcome."""

    run_id: UUID
    programme_id: UUID
    wave_ids: list[UUID]
    completed_at: Instant
    objective: MatchingObjective
    pairs: list[RunPair]
    unmatched: list[RunUnmatched]


class MatchingExport(ExportPart):
    """Every field ``Export.collect`` returns (an undeclared one is an error)."""

    candidate: CandidateExport | None
    pairs: list[PairExport]
    proposals: list[PairExport]
    exclusions: list[ExclusionExport]
    interests: list[InterestExport]
    runs: list[RunExport]


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
