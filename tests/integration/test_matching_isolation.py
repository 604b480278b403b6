"""Country isolation, route by route: a regional committee of FR reaches no
German object of the matching API (404, as if it did not exist, and nothing
changes), a participant reaches no pair it is not in, and every route of the
API is in this matrix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from fastapi.routing import APIRoute

from services.matching.entrypoints.api import router
from services.matching.entrypoints.scope import NOT_COUNTRY_OWNED
from tests.support.matching import MatchingEnv, matching_env
from tests.support.problems import problem

pytestmark = pytest.mark.integration


@dataclass
class World:
    env: MatchingEnv
    de_wave: str
    de_mentee: str
    de_mentor: str
    de_pair: str
    de_run: str
    fr_mentee: str
    de_exclusion: str


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[World]:
    async for env in matching_env(pool, tmp_path_factory.mktemp("matching-isolation"), kafka_bootstrap):
        programme = await env.programme()
        de, fr = await env.wave(programme, "DE"), await env.wave(programme, "FR")
        de_mentee, de_mentor = await env.mentee(de), await env.mentor(de, capacity=2)
        fr_mentee = await env.mentee(fr)
        await env.synced()
        run = await env.run(de)
        # Another German mentor, excluded for the German mentee: an exclusion to lift.
        excluded = await env.mentor(de)
        await env.synced()
        exclusion = await env.ok("POST", "/v1/exclusions", {"mentee_id": de_mentee, "mentor_id": excluded})
        yield World(env, de, de_mentee, de_mentor, run["pairs"][0]["pair_id"], run["run_id"], fr_mentee,
                    exclusion["exclusion_id"])


#: (method, path template, body): each a German object; the FR committee must get a 404.
COUNTRY_OWNED: list[tuple[str, str, Any]] = [
    ("POST", "/v1/runs", {"wave_ids": ["{wave}"]}),
    ("POST", "/v1/runs:preview", {"wave_ids": ["{wave}"]}),
    ("GET", "/v1/runs?wave_id={wave}", None),
    ("GET", "/v1/runs/{run}", None),
    ("GET", "/v1/mentees/{mentee}/suggestions", None),
    ("POST", "/v1/mentees/{mentee}/choices", {"mentor_ids": ["{mentor}"]}),
    ("GET", "/v1/pairs?wave_id={wave}", None),
    ("GET", "/v1/pairs/{pair}", None),
    ("POST", "/v1/pairs/{pair}:confirm", None),
    ("POST", "/v1/pairs/{pair}:decline", None),
    ("POST", "/v1/pairs/{pair}:dissolve", {"reason": "hr_decision"}),
    ("POST", "/v1/pairs/{pair}:complete", None),
    ("POST", "/v1/exclusions", {"mentee_id": "{mentee}", "mentor_id": "{mentor}"}),
    ("GET", "/v1/waves/{wave}/waitlist", None),
    ("GET", "/v1/waves/{wave}/waitlist/offers", None),
    ("POST", "/v1/runs/{run}:confirm", None),
    ("POST", "/v1/exclusions/{exclusion}:lift", {"reason": "Moved to another department."}),
    ("GET", "/v1/mentors/{mentor}/suggested-mentees", None),
]
#: Routes a committee does not hold the role for; the matrix below tries them
#: as a participant who is not in the pair.
PARTICIPANT_ONLY = [
    ("POST", "/v1/pairs/{pair}:accept", None),
    ("POST", "/v1/mentors/{mentor}/interests", {"mentee_id": "{mentee}"}),
]
TEMPLATE_PARAMS = {
    "{wave}": "{wave_id}",
    "{run}": "{run_id}",
    "{mentee}": "{mentee_id}",
    "{mentor}": "{mentor_id}",
    "{pair}": "{pair_id}",
    "{exclusion}": "{exclusion_id}",
}


def fill(world: World, value: Any) -> Any:
    names = {
        "{wave}": world.de_wave,
        "{run}": world.de_run,
        "{mentee}": world.de_mentee,
        "{mentor}": world.de_mentor,
        "{pair}": world.de_pair,
        "{exclusion}": world.de_exclusion,
    }
    if isinstance(value, str):
        for name, real in names.items():
            value = value.replace(name, real)
        return value
    if isinstance(value, list):
        return [fill(world, v) for v in value]
    if isinstance(value, dict):
        return {k: fill(world, v) for k, v in value.items()}
    return value


def route_of(template: str) -> str:
    path = template.split("?")[0]
    for name, param in TEMPLATE_PARAMS.items():
        path = path.replace(name, param)
    return path


def test_every_route_is_in_the_matrix() -> None:
    covered = {(m, route_of(t)) for m, t, _ in COUNTRY_OWNED + PARTICIPANT_ONLY}
    lists = {("GET", "/v1/runs"), ("GET", "/v1/pairs")}  # filtered: see the list tests below
    lists |= set(NOT_COUNTRY_OWNED)  # declared, with the reason, in services/matching/entrypoints/scope.py
    for route in router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods:
            declared = set(NOT_COUNTRY_OWNED)  # not country-owned, with the reason (entrypoints/scope.py)
            assert (method, route.path_format) in covered | lists | declared, f"{method} {route.path_format} is not in the matrix"


async def test_a_committee_names_no_other_countrys_mentor_in_an_exclusion(world: World) -> None:
    """Its own mentee with a German mentor: 404, exactly as for an id that is
    no mentor at all (no probing), and nothing recorded."""
    env = world.env
    committee = env.auth("regional_committee", countries=["FR"])
    before = await env.count_events()
    answers = {}
    for mentor_id in (world.de_mentor, str(uuid.uuid4()), world.de_mentee):
        body = {"mentee_id": world.fr_mentee, "mentor_id": mentor_id, "note": "same reporting line"}
        response = await env.client.post("/v1/exclusions", json=body, headers=committee)
        answers[mentor_id] = problem(response, 404)["detail"].replace(mentor_id, "<id>")
    assert len(set(answers.values())) == 1, answers
    assert await env.count_events() == before
    # The global HR admin sees both people: the same exclusion is its to record.
    body = {"mentee_id": world.fr_mentee, "mentor_id": world.de_mentor}
    assert (await env.client.post("/v1/exclusions", json=body, headers=env.auth("hr_admin"))).status_code == 201


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=lambda c: f"{c[0]} {c[1]}")
async def test_another_countrys_object_is_not_found_for_a_committee(world: World, case) -> None:
    method, template, body = case
    env = world.env
    before = await env.count_events()
    headers = env.auth("regional_committee", countries=["FR"])
    response = await env.client.request(method, fill(world, template), json=fill(world, body), headers=headers)
    problem(response, 404)
    assert await env.count_events() == before
    # The committee of the object's country does reach it (the 404 is about the country).
    own = env.auth("regional_committee", countries=["DE"])
    if method == "GET":
        assert (await env.client.get(fill(world, template), headers=own)).status_code == 200


#: A participant outside the pair: 404 where its role may act on pairs, 403 where it may not.
OUTSIDER = [
    ("POST", "/v1/pairs/{pair}:accept", None, 404),
    ("POST", "/v1/pairs/{pair}:decline", None, 404),
    ("POST", "/v1/pairs/{pair}:dissolve", {"reason": "other"}, 404),
    ("GET", "/v1/pairs/{pair}", None, 404),
    ("GET", "/v1/mentees/{mentee}/suggestions", None, 404),
    ("POST", "/v1/mentees/{mentee}/choices", {"mentor_ids": ["{mentor}"]}, 404),
    ("POST", "/v1/pairs/{pair}:confirm", None, 403),
    ("POST", "/v1/pairs/{pair}:complete", None, 403),
    ("GET", "/v1/mentors/{mentor}/suggested-mentees", None, 404),
    ("POST", "/v1/mentors/{mentor}/interests", {"mentee_id": "{mentee}"}, 404),
    ("POST", "/v1/runs/{run}:confirm", None, 403),
    ("POST", "/v1/exclusions/{exclusion}:lift", {"reason": "Moved."}, 403),
]


@pytest.mark.parametrize("case", OUTSIDER, ids=lambda c: f"{c[0]} {c[1]}")
async def test_a_participant_reaches_nothing_it_is_not_in(world: World, case) -> None:
    method, template, body, status = case
    env = world.env
    before = await env.count_events()
    response = await env.client.request(
        method, fill(world, template), json=fill(world, body), headers=env.as_participant(world.fr_mentee)
    )
    problem(response, status)
    assert await env.count_events() == before


async def test_lists_show_a_committee_only_its_countries(world: World) -> None:
    env = world.env
    fr = env.auth("regional_committee", countries=["FR"])
    assert (await env.client.get("/v1/pairs", headers=fr)).json()["items"] == []
    assert (await env.client.get("/v1/runs", headers=fr)).json()["items"] == []
    problem(await env.client.get("/v1/pairs?country=DE", headers=fr), 404)
    de = env.auth("regional_committee", countries=["DE"])
    assert [p["pair_id"] for p in (await env.client.get("/v1/pairs", headers=de)).json()["items"]] == [world.de_pair]
    assert [r["run_id"] for r in (await env.client.get("/v1/runs", headers=de)).json()["items"]] == [world.de_run]


async def test_another_organisation_sees_nothing(world: World) -> None:
    env = world.env
    other = env.auth("hr_admin", org="org-b")
    paths = (f"/v1/pairs/{world.de_pair}", f"/v1/runs/{world.de_run}", f"/v1/mentees/{world.de_mentee}/suggestions")
    for path in paths:
        problem(await env.client.get(path, headers=other), 404)
    assert (await env.client.get("/v1/pairs", headers=other)).json()["items"] == []
