"""Reads of the read model for the API, with the caller's visibility.

Visibility: a global HR admin (and a Binome service) sees the whole
organisation; a regional committee its countries only; ``ops`` reaches none
of these reads (the API's role checks). Another organisation's programme,
another country's pair, wave or country filter is "not found" (404): a
committee never learns that an object outside its countries exists.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson

from libs.api.problems import Problem
from libs.auth.principal import Principal, normalise_country
from services.insights.factors.analysis import PairOutcome
from services.insights.health.facts import Executor
from services.insights.network.graph import NetworkPair, Person

#: Smallest group whose aggregates are shown until the programme's evaluation
#: settings say otherwise (``EvaluationSettingsChanged.k_anonymity``).
DEFAULT_K_ANONYMITY = 5


def not_found(kind: str, object_id: Any) -> Problem:
    return Problem(404, detail=f"No {kind} {object_id}.")


def visible_countries(principal: Principal) -> list[str] | None:
    """None: every country of the organisation; else the only ones visible."""
    return None if principal.sees_all_countries() else sorted(principal.countries)


def narrowed(principal: Principal, country: str | None) -> list[str] | None:
    """The countries a read covers: the caller's, narrowed to ``country`` (a
    country the caller may not see is a 404)."""
    if country is None:
        return visible_countries(principal)
    code = normalise_country(country)
    if not principal.can_see_country(code):
        raise not_found("country", code)
    return [code]


async def programme(db: Executor, s: str, principal: Principal, programme_id: UUID) -> dict[str, Any]:
    row = await db.fetchrow(f"SELECT * FROM {s}.programmes WHERE programme_id = $1", programme_id)
    if row is None or row["organisation"] != principal.organisation:
        raise not_found("programme", programme_id)
    return dict(row)


async def check_wave(db: Executor, s: str, principal: Principal, wave_id: UUID | None) -> None:
    if wave_id is None:
        return
    row = await db.fetchrow(f"SELECT organisation, country FROM {s}.waves WHERE wave_id = $1", wave_id)
    if row is None or not principal.can_see(row["organisation"], row["country"]):
        raise not_found("wave", wave_id)


async def k_anonymity(db: Executor, s: str, programme_id: UUID) -> int:
    k = await db.fetchval(f"SELECT k_anonymity FROM {s}.evaluation_settings WHERE programme_id = $1", programme_id)
    return k or DEFAULT_K_ANONYMITY


# ------------------------------------------------------------------ network

_NETWORK_PAIRS = """
SELECT x.wave_id, x.mentor_wave_id, x.country, coalesce(a.sessions_held, 0) AS sessions_held,
       e.entity AS e_entity, e.business_function AS e_function, e.country AS e_country, e.generation_band AS e_generation,
       o.entity AS o_entity, o.business_function AS o_function, o.country AS o_country, o.generation_band AS o_generation
FROM {s}.pairs x
JOIN {s}.participants e ON e.participant_id = x.mentee_id
JOIN {s}.participants o ON o.participant_id = x.mentor_id
LEFT JOIN {s}.pair_activity a ON a.pair_id = x.pair_id
WHERE x.organisation = $1 AND x.programme_id = $2 AND x.formed_at IS NOT NULL
  AND ($3::uuid IS NULL OR x.wave_id = $3 OR x.mentor_wave_id = $3)
  AND ($4::text[] IS NULL OR x.country = ANY($4) OR x.mentor_country = ANY($4))
ORDER BY x.pair_id
"""

_ENROLLED = """
SELECT p.entity, p.business_function, p.country, p.generation_band FROM {s}.participants p
WHERE p.organisation = $1 AND p.programme_id = $2 AND p.withdrawn_at IS NULL
  AND ($3::uuid IS NULL OR p.wave_id = $3) AND ($4::text[] IS NULL OR p.country = ANY($4))
"""

_WAVES = """
SELECT wave_id, name FROM {s}.waves WHERE organisation = $1 AND programme_id = $2
  AND ($3::uuid IS NULL OR wave_id = $3) AND ($4::text[] IS NULL OR country = ANY($4))
ORDER BY starts_on, name, wave_id
"""


def _person(r: Any, prefix: str) -> Person:
    return Person(r[f"{prefix}_entity"], r[f"{prefix}_function"], r[f"{prefix}_country"], r[f"{prefix}_generation"])


async def network_inputs(
    db: Executor, s: str, organisation: str, programme_id: UUID, wave_id: UUID | None, countries: list[str] | None
) -> tuple[list[NetworkPair], list[Person], list[tuple[str, str]]]:
    """Pairs (unscoped people: ``graph.scoped`` aggregates them), enrolled
    people of the visible countries, and the visible waves in order."""
    args = (organisation, programme_id, wave_id, countries)
    waves = [(str(r["wave_id"]), r["name"]) for r in await db.fetch(_WAVES.format(s=s), *args)]
    shown = {w for w, _ in waves}
    pairs = [
        NetworkPair(
            # A pair belongs to its home (mentee's) wave; for a committee that
            # sees only the mentor's country, to the mentor's wave.
            str(r["wave_id"]) if str(r["wave_id"]) in shown else str(r["mentor_wave_id"]),
            _person(r, "e"), _person(r, "o"), r["sessions_held"],
        )
        for r in await db.fetch(_NETWORK_PAIRS.format(s=s), *args)
    ]
    enrolled = [
        Person(r["entity"], r["business_function"], r["country"], r["generation_band"])
        for r in await db.fetch(_ENROLLED.format(s=s), *args)
    ]
    return pairs, enrolled, waves


# ------------------------------------------------------------------ success factors

_OUTCOMES = """
SELECT x.country, x.status, x.score, x.criteria::text AS criteria, coalesce(a.sessions_held, 0) AS sessions_held,
       CASE WHEN a.maturity_pre > 0 AND a.maturity_post IS NOT NULL
            THEN (a.maturity_post - a.maturity_pre) / a.maturity_pre * 100 END AS maturity_delta_percent,
       (SELECT avg(f) FROM unnest(a.feedback_scores) f) AS feedback,
       e.entity AS e_entity, e.business_function AS e_function, e.learner_profile AS e_learner,
       e.tenure_years AS e_tenure, e.generation_band AS e_generation, e.country AS e_country,
       o.entity AS o_entity, o.business_function AS o_function, o.learner_profile AS o_learner,
       o.tenure_years AS o_tenure, o.generation_band AS o_generation, o.country AS o_country
FROM {s}.pairs x
JOIN {s}.participants e ON e.participant_id = x.mentee_id
JOIN {s}.participants o ON o.participant_id = x.mentor_id
LEFT JOIN {s}.pair_activity a ON a.pair_id = x.pair_id
WHERE x.organisation = $1 AND x.programme_id = $2 AND x.formed_at IS NOT NULL
  AND ($3::text[] IS NULL OR x.country = ANY($3))
"""


def _profile(r: Any, prefix: str) -> dict[str, Any]:
    return {
        "entity": r[f"{prefix}_entity"], "business_function": r[f"{prefix}_function"],
        "learner_profile": r[f"{prefix}_learner"], "tenure_years": r[f"{prefix}_tenure"],
        "generation_band": r[f"{prefix}_generation"], "country": r[f"{prefix}_country"],
    }


async def pair_outcomes(
    db: Executor, s: str, organisation: str, programme_id: UUID, countries: list[str] | None
) -> list[PairOutcome]:
    """One row per formed pair of the visible countries (a pair is its home
    committee's)."""
    return [
        PairOutcome(
            country=r["country"], status=r["status"], score=r["score"], criteria=orjson.loads(r["criteria"]),
            mentee=_profile(r, "e"), mentor=_profile(r, "o"), sessions_held=r["sessions_held"],
            maturity_delta_percent=r["maturity_delta_percent"], feedback=r["feedback"],
        )
        for r in await db.fetch(_OUTCOMES.format(s=s), organisation, programme_id, countries)
    ]
