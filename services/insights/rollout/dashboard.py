"""The rollout dashboard: per programme, region, country and wave, from the
read model in one statement (``rollout``): the programme, its anonymity
threshold and three ``GROUPING SETS`` aggregates (waves, people, pairs)
joined on their grouping keys. Every level is counted from the rows
themselves (a median of medians would be wrong) and nothing is kept as
counters that could drift.

One statement, not five: the request used to cost five round trips (the
programme, its threshold, then waves, people and pairs one after another)
and most of its PostgreSQL time went to counting the matched people, an
``EXISTS`` over every formed pair for each participant (a scan of the pairs
table per person, 330 x 229 rows in the benchmark's world, growing with the
square of the programme). The people matched are now one set, read once per
request from the programme's formed pairs and hashed (``matched``). In the
benchmark's world (bench/api.py) PostgreSQL's CPU per request fell from about
6.2 to 1.8 ms, and the answer is the same, key for key.

Not a summary table kept by the projection: the medians and the means of
the pairs' own changes need the rows at every level, so a summary would be
recomputed from them for a wave, its country, region and programme on every
fact that moves a pair (each session and survey), moving the cost to the
write path and to replays, and adding a table for the rebuild to reproduce.

Aggregates of survey answers are shown only for groups of at least the
programme's anonymity threshold; below it the value is null and
``suppressed`` names it. Two of them measure the mentees' digital-maturity
change, each named for what it is (``MATURITY_CHANGES``): the change of the
means (evaluation's ``change_of_means_percent``, the same figure) and the
mean of the pairs' own changes. ``maturity_delta_percent``, the older name of
the latter, is kept for existing clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from services.insights.health.facts import Executor
from services.insights.views import DEFAULT_K_ANONYMITY

MATURITY_CHANGES = ("maturity_change_of_means_percent", "maturity_mean_pair_change_percent")

# Grouping levels: the key columns each level's rows carry (a wave's, its
# name too); the others are left out of the row.
LEVELS = {
    "programme": (),
    "region": ("region",),
    "country": ("region", "country"),
    "wave": ("region", "country", "wave_id", "wave_name"),
}
# GROUPING() bits: region, country, wave (1 = rolled up).
_LEVEL_OF = {0b111: "programme", 0b011: "region", 0b001: "country", 0b000: "wave"}

_SCOPE = "w.organisation = $1 AND w.programme_id = $2 AND ($3::text[] IS NULL OR w.country = ANY($3))"
_SETS = "GROUPING SETS ((), (w.region), (w.region, w.country), (w.region, w.country, w.wave_id, w.name))"
_KEYS = "GROUPING(w.region, w.country, w.wave_id) AS level, w.region, w.country, w.wave_id"
_MATURITY = "a.maturity_pre > 0 AND a.maturity_post IS NOT NULL"
# A group of one aggregate is the group of the same keys in another (the key
# columns rolled up at a level are null in both).
_SAME_GROUP = ("{0}.level = g.level AND {0}.region IS NOT DISTINCT FROM g.region"
               " AND {0}.country IS NOT DISTINCT FROM g.country AND {0}.wave_id IS NOT DISTINCT FROM g.wave_id")

# The statement's columns: the group, then the counts in the order of the
# answer's fields (RolloutRowOut) with the aggregate each comes from (g:
# waves, e: people, x: pairs), then the figures _finish rounds or withholds.
# _finish takes the counts as one slice of the row.
_GROUP = ("r.name AS programme_name", "k.k_anonymity", "g.level", "g.region", "g.country", "g.wave_id", "g.wave_name")
_COUNTS = {
    "waves": "g", "target_pairs": "g", "enrolled": "e", "withdrawn": "e", "mentees": "e", "mentors": "e",
    "qualified_mentors": "e", "matched": "e", "pairs_formed": "x", "pairs_active": "x", "pairs_completed": "x",
    "pairs_dissolved": "x", "sessions_held": "x", "surveys_due": "x", "surveys_answered": "x",
}
_COUNT_COLUMNS = slice(len(_GROUP), len(_GROUP) + len(_COUNTS))
_FIGURES = ("coalesce(x.maturity_pairs, 0) AS maturity_pairs", *(f"x.{name}" for name in MATURITY_CHANGES),
            "coalesce(x.pairs_with_first_session, 0) AS pairs_with_first_session", "x.median_days_to_first_session")
# Null where a group has no people or no pairs (a sum over no row, too): zero.
_COLUMNS = ", ".join((*_GROUP, *(f"coalesce({a}.{name}, 0) AS {name}" for name, a in _COUNTS.items()), *_FIGURES))

# The waves in scope set the groups: every person and pair is counted in its
# wave's group, so the people's and pairs' groups are among the waves' (a
# group without people or pairs counts zeros). ``matched`` holds the
# programme's people in a formed pair, mentors wherever their mentee's wave
# is (a pair's members are people of its programme). The programme row comes
# first in the join so that a programme unknown to the caller's organisation
# yields no row at all.
_STATEMENT = f"""
WITH w AS (
    SELECT w.wave_id, w.region, w.country, w.name, w.target_pairs FROM {{s}}.waves w WHERE {_SCOPE}
), waves AS (
    SELECT {_KEYS}, w.name AS wave_name, count(*) AS waves, sum(w.target_pairs) AS target_pairs
    FROM w GROUP BY {_SETS}
), matched AS (
    SELECT mentee_id AS id FROM {{s}}.pairs WHERE programme_id = $2 AND formed_at IS NOT NULL
    UNION SELECT mentor_id FROM {{s}}.pairs WHERE programme_id = $2 AND formed_at IS NOT NULL
), people AS (
    SELECT {_KEYS},
        count(*) AS enrolled,
        count(*) FILTER (WHERE p.withdrawn_at IS NOT NULL) AS withdrawn,
        count(*) FILTER (WHERE p.role = 'mentee') AS mentees,
        count(*) FILTER (WHERE p.role = 'mentor') AS mentors,
        count(*) FILTER (WHERE p.role = 'mentor' AND p.qualified) AS qualified_mentors,
        count(m.id) AS matched
    FROM {{s}}.participants p JOIN w ON w.wave_id = p.wave_id
    LEFT JOIN matched m ON m.id = p.participant_id
    GROUP BY {_SETS}
), pairs AS (
    SELECT {_KEYS},
        count(*) AS pairs_formed,
        count(*) FILTER (WHERE x.status = 'formed') AS pairs_active,
        count(*) FILTER (WHERE x.status = 'completed') AS pairs_completed,
        count(*) FILTER (WHERE x.status = 'dissolved') AS pairs_dissolved,
        sum(a.sessions_held) AS sessions_held,
        sum(a.surveys_due) AS surveys_due,
        sum(a.surveys_answered) AS surveys_answered,
        count(*) FILTER (WHERE {_MATURITY}) AS maturity_pairs,
        (avg(a.maturity_post) FILTER (WHERE {_MATURITY}) / avg(a.maturity_pre) FILTER (WHERE {_MATURITY}) - 1) * 100
            AS maturity_change_of_means_percent,
        avg((a.maturity_post - a.maturity_pre) / a.maturity_pre * 100) FILTER (WHERE {_MATURITY})
            AS maturity_mean_pair_change_percent,
        count(a.first_held_at) AS pairs_with_first_session,
        percentile_cont(0.5) WITHIN GROUP (
            ORDER BY extract(epoch FROM a.first_held_at - m.enrolled_at) / 86400) AS median_days_to_first_session
    FROM {{s}}.pairs x
    JOIN w ON w.wave_id = x.wave_id
    LEFT JOIN {{s}}.pair_activity a ON a.pair_id = x.pair_id
    LEFT JOIN {{s}}.participants m ON m.participant_id = x.mentee_id
    WHERE x.formed_at IS NOT NULL GROUP BY {_SETS}
)
SELECT {_COLUMNS}
FROM {{s}}.programmes r
LEFT JOIN {{s}}.evaluation_settings k ON k.programme_id = r.programme_id
CROSS JOIN waves g
LEFT JOIN people e ON {_SAME_GROUP.format("e")}
LEFT JOIN pairs x ON {_SAME_GROUP.format("x")}
WHERE r.programme_id = $2 AND r.organisation = $1
"""


@dataclass(frozen=True)
class Rollout:
    """A programme's dashboard as one reader sees it."""

    programme_name: str
    k_anonymity: int
    levels: dict[str, list[dict[str, Any]]]


async def rollout(
    db: Executor, schema: str, organisation: str, programme_id: UUID, countries: list[str] | None
) -> Rollout | None:
    """The dashboard of the organisation's programme, in one statement (None:
    no such programme in the organisation). ``countries``: a committee's."""
    found = await db.fetch(_STATEMENT.format(s=schema), organisation, programme_id, countries)
    if not found:
        return None
    k = found[0]["k_anonymity"] or DEFAULT_K_ANONYMITY
    return Rollout(found[0]["programme_name"], k, _levels(found, k))


async def dashboard(
    db: Executor, schema: str, organisation: str, programme_id: UUID, countries: list[str] | None, k_anonymity: int
) -> dict[str, list[dict[str, Any]]]:
    """Rows per level (``programme``, ``region``, ``country``, ``wave``), every
    metric on each row, suppressed under ``k_anonymity`` (the exports')."""
    found = await db.fetch(_STATEMENT.format(s=schema), organisation, programme_id, countries)
    return _levels(found, k_anonymity)


def as_json(programme_id: UUID, found: Rollout) -> bytes:
    """The answer of ``GET .../rollout``, encoded by orjson: the rows are
    built in ``RolloutOut``'s field order with a level's own keys only, so
    the bytes are those ``response_model=RolloutOut`` with
    ``exclude_unset`` gave (test_insights_rollout checks them against the
    model), without checking twelve rows against the model on every
    request."""
    return orjson.dumps({"programme_id": programme_id, "k_anonymity": found.k_anonymity, **found.levels},
                        default=_uuid_text)


def _uuid_text(value: Any) -> str:
    if isinstance(value, UUID):  # asyncpg's own UUID type, which orjson does not know
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _levels(found: list[Any], k: int) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {level: [] for level in LEVELS}
    for r in found:
        level = _LEVEL_OF[r["level"]]
        result[level].append(_finish(level, r, k))
    for rows in result.values():
        # Python's order of the keys' text, as before (not the database's collation).
        rows.sort(key=lambda row: (str(row.get("region")), str(row.get("country")), str(row.get("wave_id"))))
    return result


def _finish(level: str, r: Any, k: int) -> dict[str, Any]:
    row: dict[str, Any] = {key: r[key] for key in LEVELS[level]}
    row.update(zip(_COUNTS, r[_COUNT_COLUMNS]))
    due = row["surveys_due"]
    row["survey_response_rate"] = round(row["surveys_answered"] / due, 4) if due else None
    row["maturity_pairs"] = r["maturity_pairs"]
    withheld = r["maturity_pairs"] < k
    for name in MATURITY_CHANGES:
        row[name] = None if withheld or r[name] is None else round(float(r[name]), 2)
    row["maturity_delta_percent"] = row["maturity_mean_pair_change_percent"]  # deprecated name, same figure
    row["pairs_with_first_session"] = r["pairs_with_first_session"]
    median = r["median_days_to_first_session"]
    row["median_days_to_first_session"] = None if median is None else round(float(median), 2)
    row["suppressed"] = [*MATURITY_CHANGES, "maturity_delta_percent"] if withheld else []
    return row
