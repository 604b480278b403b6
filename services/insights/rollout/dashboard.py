"""The rollout dashboard: per programme, region, country and wave, from the
read model in three ``GROUPING SETS`` queries (waves, people, pairs), so
every level is counted from the rows themselves (a median of medians would
be wrong) and nothing is kept as counters that could drift.

Aggregates of survey answers are shown only for groups of at least the
programme's anonymity threshold; below it the value is null and
``suppressed`` names it. Two of them measure the mentees' digital-maturity
change, each named for what it is (``MATURITY_CHANGES``): the change of the
means (evaluation's ``change_of_means_percent``, the same figure) and the
mean of the pairs' own changes. ``maturity_delta_percent``, the older name of
the latter, is kept for existing clients.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.insights.health.facts import Executor

MATURITY_CHANGES = ("maturity_change_of_means_percent", "maturity_mean_pair_change_percent")

# Grouping levels: the key columns each level keeps (the others are null).
LEVELS = {
    "programme": (),
    "region": ("region",),
    "country": ("region", "country"),
    "wave": ("region", "country", "wave_id"),
}
_SETS = "GROUPING SETS ((), (w.region), (w.region, w.country), (w.region, w.country, w.wave_id, w.name))"
_KEYS = "w.region, w.country, w.wave_id, w.name AS wave_name, GROUPING(w.region, w.country, w.wave_id) AS level"
_SCOPE = "w.organisation = $1 AND w.programme_id = $2 AND ($3::text[] IS NULL OR w.country = ANY($3))"

_WAVES = f"""SELECT {_KEYS}, count(*) AS waves, sum(w.target_pairs) AS target_pairs
FROM {{s}}.waves w WHERE {_SCOPE} GROUP BY {_SETS}"""

_PEOPLE = f"""SELECT {_KEYS},
    count(*) AS enrolled,
    count(*) FILTER (WHERE p.withdrawn_at IS NOT NULL) AS withdrawn,
    count(*) FILTER (WHERE p.role = 'mentee') AS mentees,
    count(*) FILTER (WHERE p.role = 'mentor') AS mentors,
    count(*) FILTER (WHERE p.role = 'mentor' AND p.qualified) AS qualified_mentors,
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM {{s}}.pairs x WHERE x.formed_at IS NOT NULL
          AND p.participant_id IN (x.mentee_id, x.mentor_id))) AS matched
FROM {{s}}.participants p JOIN {{s}}.waves w ON w.wave_id = p.wave_id
WHERE {_SCOPE} GROUP BY {_SETS}"""

_PAIRS = f"""SELECT {_KEYS},
    count(*) AS pairs_formed,
    count(*) FILTER (WHERE x.status = 'formed') AS pairs_active,
    count(*) FILTER (WHERE x.status = 'completed') AS pairs_completed,
    count(*) FILTER (WHERE x.status = 'dissolved') AS pairs_dissolved,
    coalesce(sum(a.sessions_held), 0) AS sessions_held,
    coalesce(sum(a.surveys_due), 0) AS surveys_due,
    coalesce(sum(a.surveys_answered), 0) AS surveys_answered,
    count(*) FILTER (WHERE a.maturity_pre > 0 AND a.maturity_post IS NOT NULL) AS maturity_pairs,
    (avg(a.maturity_post) FILTER (WHERE a.maturity_pre > 0 AND a.maturity_post IS NOT NULL)
     / avg(a.maturity_pre) FILTER (WHERE a.maturity_pre > 0 AND a.maturity_post IS NOT NULL) - 1) * 100
        AS maturity_change_of_means_percent,
    avg((a.maturity_post - a.maturity_pre) / a.maturity_pre * 100)
        FILTER (WHERE a.maturity_pre > 0 AND a.maturity_post IS NOT NULL) AS maturity_mean_pair_change_percent,
    count(a.first_held_at) AS pairs_with_first_session,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM a.first_held_at - m.enrolled_at) / 86400) AS median_days_to_first_session
FROM {{s}}.pairs x
JOIN {{s}}.waves w ON w.wave_id = x.wave_id
LEFT JOIN {{s}}.pair_activity a ON a.pair_id = x.pair_id
LEFT JOIN {{s}}.participants m ON m.participant_id = x.mentee_id
WHERE x.formed_at IS NOT NULL AND {_SCOPE} GROUP BY {_SETS}"""

_ZERO = {
    "waves": 0, "target_pairs": 0, "enrolled": 0, "withdrawn": 0, "mentees": 0, "mentors": 0,
    "qualified_mentors": 0, "matched": 0, "pairs_formed": 0, "pairs_active": 0, "pairs_completed": 0,
    "pairs_dissolved": 0, "sessions_held": 0, "surveys_due": 0, "surveys_answered": 0, "maturity_pairs": 0,
    "maturity_change_of_means_percent": None, "maturity_mean_pair_change_percent": None, "pairs_with_first_session": 0, "median_days_to_first_session": None,
}
# GROUPING() bits: region, country, wave (1 = rolled up).
_LEVEL_OF = {0b111: "programme", 0b011: "region", 0b001: "country", 0b000: "wave"}


async def dashboard(
    db: Executor, schema: str, organisation: str, programme_id: UUID, countries: list[str] | None, k_anonymity: int
) -> dict[str, list[dict[str, Any]]]:
    """Rows per level (``programme``, ``region``, ``country``, ``wave``), every
    metric on each row."""
    rows: dict[tuple, dict[str, Any]] = {}
    for sql in (_WAVES, _PEOPLE, _PAIRS):
        for r in await db.fetch(sql.format(s=schema), organisation, programme_id, countries):
            level = _LEVEL_OF[r["level"]]
            key = (level, r["region"], r["country"], r["wave_id"])
            row = rows.setdefault(key, _new_row(level, r))
            # A sum over no row is NULL (a programme's total before its first
            # wave): the row's zero stands.
            row.update({k: v for k, v in dict(r).items() if k in _ZERO and v is not None})
    result: dict[str, list[dict[str, Any]]] = {level: [] for level in LEVELS}
    for (level, *_), row in sorted(rows.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        result[level].append(_finish(row, k_anonymity))
    return result


def _new_row(level: str, r: Any) -> dict[str, Any]:
    row: dict[str, Any] = {key: r[key] for key in LEVELS[level]}
    if level == "wave":
        row["wave_name"] = r["wave_name"]
    return {**row, **_ZERO}


def _finish(row: dict[str, Any], k: int) -> dict[str, Any]:
    row["survey_response_rate"] = (
        round(row["surveys_answered"] / row["surveys_due"], 4) if row["surveys_due"] else None
    )
    withheld = row["maturity_pairs"] < k
    for name in (*MATURITY_CHANGES, "median_days_to_first_session"):
        if row[name] is not None:
            row[name] = None if withheld and name in MATURITY_CHANGES else round(float(row[name]), 2)
    row["maturity_delta_percent"] = row["maturity_mean_pair_change_percent"]  # deprecated name, same figure
    row["suppressed"] = [*MATURITY_CHANGES, "maturity_delta_percent"] if withheld else []
    return row
