"""What a committee (its countries) or HR (the organisation) can download as
a spreadsheet: the rollout dashboard, pairs with their health, participants
and survey results. Each dataset is typed columns plus the rows of the
caller's scope; ``libs/spreadsheet.py`` writes them as CSV or XLSX.

No personal data: insights holds none (ids and the matchable profile only).
Survey results are aggregates per wave, survey and phase; a mean score of
fewer answers than the programme's anonymity threshold is left empty, as
on the dashboard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg

from libs.spreadsheet import Column, ColumnType, Rows, from_list
from services.insights.health.facts import PairHealth, PairScope, pairs_statement, rules_for, to_facts
from services.insights.health.rules import HealthRules, evaluate
from services.insights.rollout.dashboard import LEVELS, dashboard

T, I, N, B, D, At = (  # noqa: E741 - short names keep the column tables readable
    ColumnType.TEXT, ColumnType.INTEGER, ColumnType.NUMBER, ColumnType.BOOLEAN, ColumnType.DATE, ColumnType.INSTANT,
)


class Dataset(StrEnum):
    ROLLOUT = "rollout"
    PAIRS = "pairs"
    PARTICIPANTS = "participants"
    SURVEYS = "surveys"


def _columns(*spec: tuple[str, ColumnType]) -> tuple[Column, ...]:
    return tuple(Column(name, kind) for name, kind in spec)


ROLLOUT_METRICS = _columns(
    ("waves", I), ("target_pairs", I), ("enrolled", I), ("withdrawn", I), ("mentees", I), ("mentors", I),
    ("qualified_mentors", I), ("matched", I), ("pairs_formed", I), ("pairs_active", I), ("pairs_completed", I),
    ("pairs_dissolved", I), ("sessions_held", I), ("surveys_due", I), ("surveys_answered", I),
    ("survey_response_rate", N), ("maturity_pairs", I), ("maturity_delta_percent", N),
    ("pairs_with_first_session", I), ("median_days_to_first_session", N),
)
ROLLOUT = _columns(("level", T), ("region", T), ("country", T), ("wave_id", T), ("wave_name", T)) + ROLLOUT_METRICS

PAIRS = _columns(
    ("pair_id", T), ("wave_id", T), ("wave_name", T), ("region", T), ("country", T), ("health", T),
    ("reasons", T), ("formed_at", At), ("ended_at", At), ("sessions_held", I), ("sessions_cancelled", I),
    ("no_shows", I), ("last_held_at", At),
)

PARTICIPANTS = _columns(
    ("participant_id", T), ("wave_id", T), ("wave_name", T), ("region", T), ("country", T), ("role", T),
    ("entity", T), ("business_function", T), ("job_level", I), ("tenure_years", I), ("generation_band", T),
    ("learner_profile", T), ("sessions_per_month", I), ("qualified", B), ("matched", B), ("enrolled_on", D),
    ("withdrawn_on", D),
)

SURVEYS = _columns(
    ("wave_id", T), ("wave_name", T), ("region", T), ("country", T), ("survey", T), ("phase", T),
    ("assigned", I), ("answered", I), ("response_rate", N), ("mean_score", N),
)

COLUMNS: dict[Dataset, tuple[Column, ...]] = {
    Dataset.ROLLOUT: ROLLOUT, Dataset.PAIRS: PAIRS, Dataset.PARTICIPANTS: PARTICIPANTS, Dataset.SURVEYS: SURVEYS,
}

_PARTICIPANTS = """
SELECT p.participant_id, p.wave_id, w.name, w.region, p.country, p.role, p.entity, p.business_function,
       p.job_level, p.tenure_years, p.generation_band, p.learner_profile, p.sessions_per_month, p.qualified,
       EXISTS (SELECT 1 FROM {s}.pairs x WHERE x.formed_at IS NOT NULL
               AND p.participant_id IN (x.mentee_id, x.mentor_id)) AS matched,
       (p.enrolled_at AT TIME ZONE 'UTC')::date, (p.withdrawn_at AT TIME ZONE 'UTC')::date
FROM {s}.participants p JOIN {s}.waves w ON w.wave_id = p.wave_id
WHERE p.organisation = $1 AND p.programme_id = $2 AND ($3::text[] IS NULL OR p.country = ANY($3))
  AND ($4::uuid IS NULL OR p.wave_id = $4)
ORDER BY w.country, w.name, p.wave_id, p.role, p.participant_id
"""

# A pair's surveys count in its home (mentee's) wave, as on the dashboard.
_SURVEYS = """
SELECT w.wave_id, w.name, w.region, w.country, a.kind, a.phase,
       count(*) FILTER (WHERE a.status <> 'cancelled') AS assigned,
       count(*) FILTER (WHERE a.status = 'answered') AS answered,
       CASE WHEN count(*) FILTER (WHERE a.status <> 'cancelled') > 0
            THEN round((count(*) FILTER (WHERE a.status = 'answered'))::numeric
                       / count(*) FILTER (WHERE a.status <> 'cancelled'), 4) END AS response_rate,
       CASE WHEN count(a.score) FILTER (WHERE a.status = 'answered') >= $5
            THEN round(avg(a.score) FILTER (WHERE a.status = 'answered')::numeric, 2) END AS mean_score
FROM {s}.assignments a
JOIN {s}.pairs x ON x.pair_id = a.pair_id
JOIN {s}.waves w ON w.wave_id = x.wave_id
WHERE w.organisation = $1 AND w.programme_id = $2 AND ($3::text[] IS NULL OR w.country = ANY($3))
  AND ($4::uuid IS NULL OR w.wave_id = $4)
GROUP BY w.wave_id, w.name, w.region, w.country, a.kind, a.phase
ORDER BY w.country, w.name, w.wave_id, a.kind, a.phase
"""


async def _cursor(pool: asyncpg.Pool, sql: str, *args: Any) -> AsyncIterator[Sequence[Any]]:
    """Rows read with a server-side cursor: a large export never sits whole in memory."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for record in conn.cursor(sql, *args, prefetch=500):
            yield tuple(str(v) if isinstance(v, UUID) else v for v in record.values())


async def rows(
    dataset: Dataset,
    pool: asyncpg.Pool,
    schema: str,
    *,
    organisation: str,
    programme_id: UUID,
    wave_id: UUID | None,
    countries: list[str] | None,
    k_anonymity: int,
    now: datetime,
) -> Rows:
    """The rows of ``dataset`` in the caller's scope, in the order of ``COLUMNS[dataset]``."""
    if dataset is Dataset.PARTICIPANTS:
        return _cursor(pool, _PARTICIPANTS.format(s=schema), organisation, programme_id, countries, wave_id)
    if dataset is Dataset.SURVEYS:
        return _cursor(pool, _SURVEYS.format(s=schema), organisation, programme_id, countries, wave_id, k_anonymity)
    if dataset is Dataset.PAIRS:
        rules = (await rules_for(pool, schema, {programme_id}))[programme_id]
        return _pairs(pool, pairs_statement(schema, PairScope(organisation, programme_id, wave_id, countries)), rules, now)
    levels = await dashboard(pool, schema, organisation, programme_id, countries, k_anonymity)
    return from_list([_rollout_row(level, row) for level in LEVELS for row in levels[level]
                      if wave_id is None or row.get("wave_id") == wave_id])


async def _pairs(pool: asyncpg.Pool, statement: tuple[Any, ...], rules: HealthRules, now: datetime) -> Rows:
    """Each pair with its verdict, judged row by row as the cursor reads them:
    the statement pair health reads (``facts.pairs_statement``), the same
    rules and verdicts."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for r in conn.cursor(*statement, prefetch=500):
            yield _pair_row(PairHealth(dict(r), evaluate(to_facts(r), rules, now)).as_dict())


def _pair_row(h: dict[str, Any]) -> tuple[Any, ...]:
    activity = h["activity"]
    reasons = "; ".join(f"{r['code']}: {r['detail']}" for r in h["reasons"])
    return (
        str(h["pair_id"]), str(h["wave_id"]), h["wave_name"], h["region"], h["country"], h["status"], reasons,
        h["formed_at"], h["ended_at"], activity.get("sessions_held"), activity.get("sessions_cancelled"),
        activity.get("no_shows"), activity.get("last_held_at"),
    )


def _rollout_row(level: str, row: dict[str, Any]) -> tuple[Any, ...]:
    wave_id = row.get("wave_id")
    keys = (level, row.get("region"), row.get("country"), str(wave_id) if wave_id else None, row.get("wave_name"))
    return keys + tuple(row[c.name] for c in ROLLOUT_METRICS)
