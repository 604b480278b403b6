"""Loading pairs' health facts and their programme's rules from the read model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.insights.health.rules import HealthRules, MemberMood, PairFacts, Status, Verdict, evaluate

Executor = asyncpg.Connection | asyncpg.Pool

# Optional filters as nullable parameters: one statement, no SQL built from input.
_PAIRS = """
SELECT p.pair_id, p.organisation, p.mentee_id, p.mentor_id, p.programme_id, p.wave_id, p.country, w.region, w.name AS wave_name, p.status,
       p.formed_at, p.ended_at, p.dissolution_reason, m.sessions_per_month,
       a.sessions_held, a.sessions_cancelled, a.no_shows, a.first_held_at, a.last_held_at,
       a.last_mood, a.last_mood_at, a.feedback_scores, a.last_feedback_at, a.open_survey_due,
       a.budget_exceeded_month, a.budget_exceeded_at, mo.mood_members, mo.moods, mo.mood_times
FROM {s}.pairs p
LEFT JOIN {s}.waves w ON w.wave_id = p.wave_id
LEFT JOIN {s}.participants m ON m.participant_id = p.mentee_id
LEFT JOIN {s}.pair_activity a ON a.pair_id = p.pair_id
LEFT JOIN LATERAL (  -- each member's latest check-in (pair_activity keeps only the pair's latest)
    SELECT array_agg(member ORDER BY member) AS mood_members, array_agg(mood ORDER BY member) AS moods,
           array_agg(recorded_at ORDER BY member) AS mood_times
    FROM (SELECT DISTINCT ON (member) member, mood, recorded_at FROM {s}.check_ins c
          WHERE c.pair_id = p.pair_id ORDER BY member, recorded_at DESC, check_in_id DESC) latest
) mo ON true
WHERE ($1::text IS NULL OR p.organisation = $1) AND p.status IN ('formed', 'completed', 'dissolved')
  AND ($2::uuid IS NULL OR p.programme_id = $2)
  AND ($3::uuid IS NULL OR p.wave_id = $3)
  AND ($4::text[] IS NULL OR p.country = ANY($4))
  AND ($5::text IS NULL OR w.region = $5)
  AND ($6::uuid IS NULL OR p.pair_id = $6)
  AND ($7::text[] IS NULL OR p.status = ANY($7))
  AND ($8::uuid IS NULL OR p.pair_id > $8)
ORDER BY p.pair_id
LIMIT $9  -- NULL: no limit
"""


@dataclass(frozen=True)
class PairScope:
    """Which pairs to load: None means every organisation (the business gauges
    only) or every country."""

    organisation: str | None
    programme_id: UUID | None = None
    wave_id: UUID | None = None
    countries: list[str] | None = None
    region: str | None = None
    pair_id: UUID | None = None


@dataclass(frozen=True)
class PairHealth:
    row: dict[str, Any]
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        keys = ("pair_id", "programme_id", "wave_id", "wave_name", "country", "region", "formed_at", "ended_at")
        return {
            **{k: self.row[k] for k in keys},
            "status": self.verdict.status.value,
            "reasons": [r.as_dict() for r in self.verdict.reasons],
            "activity": {
                "sessions_held": self.row["sessions_held"] or 0,
                "sessions_cancelled": self.row["sessions_cancelled"] or 0,
                "no_shows": self.row["no_shows"] or 0,
                "last_held_at": self.row["last_held_at"],
                "last_mood": self.row["last_mood"],
                "moods": {m.member: {"mood": m.mood, "at": m.at} for m in member_moods(self.row)},
            },
        }


def member_moods(row: asyncpg.Record | dict[str, Any]) -> tuple[MemberMood, ...]:
    """Each member's latest check-in, by member."""
    return tuple(
        MemberMood(member, mood, at)
        for member, mood, at in zip(row["mood_members"] or (), row["moods"] or (), row["mood_times"] or ())
    )


def to_facts(row: asyncpg.Record) -> PairFacts:
    return PairFacts(
        status=row["status"],
        formed_at=row["formed_at"],
        ended_at=row["ended_at"],
        dissolution_reason=row["dissolution_reason"],
        sessions_per_month=row["sessions_per_month"],
        sessions_held=row["sessions_held"] or 0,
        sessions_cancelled=row["sessions_cancelled"] or 0,
        no_shows=row["no_shows"] or 0,
        first_held_at=row["first_held_at"],
        last_held_at=row["last_held_at"],
        moods=member_moods(row),
        feedback_scores=tuple(row["feedback_scores"] or ()),
        last_feedback_at=row["last_feedback_at"],
        open_survey_due=tuple(row["open_survey_due"] or ()),
        budget_exceeded_month=row["budget_exceeded_month"],
        budget_exceeded_at=row["budget_exceeded_at"],
    )


async def rules_for(db: Executor, schema: str, programme_ids: set[UUID]) -> dict[UUID, HealthRules]:
    """Each programme's effective rules: its overrides on top of the defaults."""
    rows = await db.fetch(
        f"SELECT programme_id, rules::text FROM {schema}.health_rules WHERE programme_id = ANY($1::uuid[])",
        list(programme_ids),
    )
    overrides = {r["programme_id"]: orjson.loads(r["rules"]) for r in rows}
    return {pid: HealthRules(**overrides.get(pid, {})) for pid in programme_ids}


async def rules_document(db: Executor, schema: str, programme_id: UUID) -> dict[str, Any]:
    """A programme's rules as the API shows them: the defaults, its
    overrides, the effective rules and who set them last."""
    row = await db.fetchrow(
        f"SELECT rules::text, updated_at, updated_by FROM {schema}.health_rules WHERE programme_id = $1", programme_id
    )
    effective = (await rules_for(db, schema, {programme_id}))[programme_id]
    return {
        "programme_id": programme_id,
        "defaults": HealthRules().model_dump(),
        "overrides": orjson.loads(row["rules"]) if row else {},
        "effective": effective.model_dump(),
        "updated_at": row["updated_at"] if row else None,
        "updated_by": row["updated_by"] if row else None,
    }


async def set_rules(
    db: Executor, schema: str, programme_id: UUID, organisation: str, overrides: dict[str, Any], at: datetime, by: str
) -> None:
    """Replace a programme's overrides (the thresholds not given take the defaults)."""
    await db.execute(
        f"""INSERT INTO {schema}.health_rules (programme_id, organisation, rules, updated_at, updated_by)
            VALUES ($1, $2, $3::jsonb, $4, $5)
            ON CONFLICT (programme_id) DO UPDATE SET rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at,
                updated_by = EXCLUDED.updated_by""",
        programme_id, organisation, orjson.dumps(overrides).decode(), at, by,
    )  # fmt: skip


async def pair_health(db: Executor, schema: str, scope: PairScope, now: datetime) -> list[PairHealth]:
    """Every formed (or ended) pair in ``scope`` with its verdict as of ``now``, by pair id."""
    return await _evaluated(db, schema, scope, now, await _rows(db, schema, scope))


#: The stored pair statuses each health status can come from (``evaluate``):
#: the part of a status filter that SQL can apply.
_STORED = {
    Status.ENDED: ("completed", "dissolved"),
    Status.HEALTHY: ("formed",),
    Status.AT_RISK: ("formed",),
    Status.DORMANT: ("formed",),
}


async def pair_health_page(
    db: Executor, schema: str, scope: PairScope, now: datetime, wanted: set[Status], after: UUID | None, limit: int
) -> list[PairHealth]:
    """Up to ``limit + 1`` pairs in ``scope`` whose status is ``wanted``, by
    pair id after ``after``: a stable order (a rebuild or the passing of time
    changes a status, never a pair's place), paged in SQL.

    SQL filters on the stored pair status (ended or not). Healthy, at risk
    and dormant depend on the programme's rules and on ``now``, so they are
    evaluated in Python on each batch of ``limit + 1`` rows, and batches are
    read until the page is full or the pairs run out: a page never holds more
    than one batch in memory, and a filter on a rare status reads further."""
    stored = sorted({s for status in wanted for s in _STORED[status]})
    found: list[PairHealth] = []
    while len(found) <= limit:
        rows = await _rows(db, schema, scope, stored=stored, after=after, limit=limit + 1)
        found += [h for h in await _evaluated(db, schema, scope, now, rows) if h.verdict.status in wanted]
        if len(rows) <= limit:
            break
        after = rows[-1]["pair_id"]
    return found[: limit + 1]


async def _rows(
    db: Executor,
    schema: str,
    scope: PairScope,
    *,
    stored: list[str] | None = None,
    after: UUID | None = None,
    limit: int | None = None,
) -> list[asyncpg.Record]:
    return await db.fetch(*pairs_statement(schema, scope, stored=stored, after=after, limit=limit))


def pairs_statement(
    schema: str,
    scope: PairScope,
    *,
    stored: list[str] | None = None,
    after: UUID | None = None,
    limit: int | None = None,
) -> tuple[Any, ...]:
    """The statement that reads pairs' facts and its arguments: the pairs in
    ``scope`` with a stored status in ``stored``, by pair id after ``after``."""
    return (
        _PAIRS.format(s=schema),
        scope.organisation, scope.programme_id, scope.wave_id, scope.countries, scope.region, scope.pair_id,
        stored, after, limit,
    )  # fmt: skip


async def _evaluated(
    db: Executor, schema: str, scope: PairScope, now: datetime, rows: list[asyncpg.Record]
) -> list[PairHealth]:
    rules = await rules_for(db, schema, {r["programme_id"] for r in rows})
    return [PairHealth(dict(r), evaluate(to_facts(r), rules[r["programme_id"]], now)) for r in rows]
