"""Who sees what in evaluation, on every endpoint: a regional committee of FR
gets 404 for German assignments, pairs and filters naming them (never 403);
another organisation gets 404; ops gets no business data; a participant
reaches its own assignments only. Refused requests change nothing.

The matrix is checked against the app's routes: a new route must be added to
it, or listed with the reason it is not country-owned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from fastapi.routing import APIRoute

from services.evaluation.entrypoints.api import router
from tests.support.evaluation import EvaluationEnv, PairIds, evaluation_env

pytestmark = pytest.mark.integration


@dataclass
class World:
    env: EvaluationEnv
    programme: str
    de_wave: str
    de_pair: PairIds
    fr_pair: PairIds
    de_assignment: str  # the DE mentor's feedback
    template: str


@pytest.fixture(scope="module")
async def world(
    pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async for env in evaluation_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("evaluation-isolation")):
        programme = await env.programme()
        de, fr = await env.wave(programme, "DE", "Europe"), await env.wave(programme, "FR", "Europe")
        de_pair, fr_pair = env.new_pair(programme, de, "DE"), env.new_pair(programme, fr, "FR")
        await env.publish(env.formed(de_pair), env.held(de_pair), env.formed(fr_pair))
        mentor_feedback = await env.one(de_pair.mentor_id, "session_feedback")
        template = (await env.client.get(f"/v1/programmes/{programme}/templates", headers=env.auth())).json()[0]
        yield World(env, str(programme), str(de), de_pair, fr_pair, mentor_feedback["assignment_id"],
                    template["template_id"])


# (method, path template); {assignment}, {pair}, {wave}, {participant} are German.
COUNTRY_OWNED: list[tuple[str, str]] = [
    ("GET", "/v1/assignments/{assignment}"),
    ("GET", "/v1/pairs/{pair}/maturity"),
    ("GET", "/v1/assignments?country=DE"),
    ("GET", "/v1/assignments?wave_id={wave}"),
    ("GET", "/v1/assignments?pair_id={pair}"),
    ("GET", "/v1/assignments?participant_id={participant}"),
    ("GET", "/v1/programmes/{programme}/results?country=DE"),
    ("GET", "/v1/programmes/{programme}/results?wave_id={wave}"),
]
NOT_COUNTRY_OWNED = {
    ("GET", "/v1/programmes/{programme_id}/templates"): "programme configuration (test_organisation_objects)",
    ("GET", "/v1/templates/{template_id}"): "programme configuration (test_organisation_objects)",
    ("POST", "/v1/templates/{template_id}/versions"): "HR admins only (test_organisation_objects)",
    ("GET", "/v1/programmes/{programme_id}/evaluation-settings"): "programme configuration",
    ("PUT", "/v1/programmes/{programme_id}/evaluation-settings"): "HR admins only",
    ("GET", "/v1/assignments"): "lists only visible countries (test_unfiltered_lists_and_results)",
    ("POST", "/v1/assignments/{assignment_id}/answers"): "its participant only (test_evaluation_api)",
    ("POST", "/v1/templates/{template_id}/answers:import"): (
        "names assignments in the file, each checked for the caller's countries (test_evaluation_import)"
    ),
    ("POST", "/v1/assignments:remind-overdue"): "acts on the caller's countries (test_reminders_stay_in_country)",
    ("GET", "/v1/programmes/{programme_id}/results"): "groups of visible countries only",
}


def ids(case: tuple[str, str]) -> str:
    return f"{case[0]} {case[1]}"


async def call(world: World, case: tuple[str, str], headers: dict[str, str]) -> Any:
    method, template = case
    path = template.format(
        assignment=world.de_assignment, pair=world.de_pair.pair_id, wave=world.de_wave,
        participant=world.de_pair.mentor_id, programme=world.programme,
    )
    return await world.env.client.request(method, path, headers=headers)


def test_every_route_is_in_the_matrix_or_listed_as_not_country_owned() -> None:
    names = {"{assignment}": "{assignment_id}", "{pair}": "{pair_id}", "{programme}": "{programme_id}"}
    covered = set()
    for method, template in COUNTRY_OWNED:
        path = template.split("?")[0]
        for short, long in names.items():
            path = path.replace(short, long)
        covered.add((method, path))
    for route in router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods:
            key = (method, route.path_format)
            assert key in covered or key in NOT_COUNTRY_OWNED, f"{method} {route.path_format} is in neither list"


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_a_french_committee_gets_404_for_german_objects(world: World, case: tuple[str, str]) -> None:
    before = await world.env.count_events()
    response = await call(world, case, world.env.auth("regional_committee", countries=["FR"]))
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "items" not in response.json() and "survey" not in response.json()  # nothing of the German data
    assert await world.env.count_events() == before


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_a_german_committee_reads_them(world: World, case: tuple[str, str]) -> None:
    response = await call(world, case, world.env.auth("regional_committee", countries=["DE"]))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_another_organisation_gets_404(world: World, case: tuple[str, str]) -> None:
    response = await call(world, case, world.env.auth("hr_admin", org="org-b"))
    if case[1] == "/v1/assignments?country=DE":
        assert response.status_code == 200 and response.json()["items"] == []
    else:
        assert response.status_code == 404, response.text


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_ops_sees_no_business_data(world: World, case: tuple[str, str]) -> None:
    assert (await call(world, case, world.env.auth("ops"))).status_code == 403
    assert (await world.env.client.get("/metrics")).status_code == 200


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_a_participant_reaches_only_its_own(world: World, case: tuple[str, str]) -> None:
    """The DE mentee's token against its mentor's objects."""
    own = world.env.participant(world.de_pair.mentee_id)
    response = await call(world, case, own)
    if response.status_code == 200:  # a list: only the participant's own assignments
        items = response.json()["items"]
        assert {i["participant_id"] for i in items} <= {str(world.de_pair.mentee_id)}
    else:
        assert response.status_code in (403, 404), response.text


async def test_a_participant_reads_and_lists_its_own(world: World) -> None:
    env = world.env
    own = env.participant(world.de_pair.mentee_id)
    listed = (await env.client.get("/v1/assignments", headers=own)).json()["items"]
    assert sorted(a["kind"] for a in listed) == ["digital_maturity", "session_feedback"]
    assert {a["participant_id"] for a in listed} == {str(world.de_pair.mentee_id)}
    single = await env.client.get(f"/v1/assignments/{listed[0]['assignment_id']}", headers=own)
    assert single.status_code == 200 and single.json()["survey"]["questions"]
    stranger = env.participant(world.de_pair.mentee_id, org="org-b")
    assert (await env.client.get(f"/v1/assignments/{listed[0]['assignment_id']}", headers=stranger)).status_code == 404
    assert (await env.client.get("/v1/assignments", headers=stranger)).json()["items"] == []


async def test_unfiltered_lists_and_results_hold_only_visible_countries(world: World) -> None:
    env = world.env
    fr = env.auth("regional_committee", countries=["FR"])
    listed = (await env.client.get("/v1/assignments", headers=fr)).json()["items"]
    assert {a["country"] for a in listed} == {"FR"} and len(listed) == 1
    results = await env.client.get(f"/v1/programmes/{world.programme}/results", params={"group_by": "country"},
                                   headers=fr)
    assert [g["group"] for g in results.json()["groups"]] == ["FR"]
    everything = (await env.client.get("/v1/assignments", headers=env.auth())).json()["items"]
    assert {a["country"] for a in everything} == {"DE", "FR"}


async def test_organisation_objects(world: World) -> None:
    env = world.env
    other = env.auth("hr_admin", org="org-b")
    before = await env.count_events()
    for path in (f"/v1/programmes/{world.programme}/templates", f"/v1/templates/{world.template}",
                 f"/v1/programmes/{world.programme}/evaluation-settings"):
        assert (await env.client.get(path, headers=other)).status_code == 404, path
        assert (await env.client.get(path, headers=env.auth("regional_committee", countries=["FR"]))).is_success
        assert (await env.client.get(path, headers=env.auth("ops"))).status_code == 403
    body = {"title": {"en": "T", "fr": "T"},
            "questions": [{"question_id": "q", "kind": "scale", "text": {"en": "Q", "fr": "Q"}}]}
    assert (await env.client.post(f"/v1/templates/{world.template}/versions", json=body, headers=other)).status_code == 404
    put = await env.client.put(f"/v1/programmes/{world.programme}/evaluation-settings", json={"k_anonymity": 4},
                               headers=other)
    assert put.status_code == 404
    assert await env.count_events() == before


async def test_reminders_stay_in_country(world: World) -> None:
    env = world.env
    env.clock.now = datetime.now(UTC) + timedelta(days=30)
    fr = env.auth("regional_committee", countries=["FR"])
    reminded = (await env.client.post("/v1/assignments:remind-overdue", headers=fr)).json()["reminded"]
    fr_pre = await env.one(world.fr_pair.mentee_id, "digital_maturity")
    assert reminded == [fr_pre["assignment_id"]]
    german = await env.assignments(country="DE")
    assert german and all(a["reminders"] == 0 for a in german)
