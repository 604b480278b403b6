"""Who sees what, on every endpoint: a regional committee of FR gets 404 for
a DE wave and a DE participant (never 403, which would confirm they exist);
another organisation gets 404 for everything; ops gets no business data; a
participant reaches its own record only. Refused requests change nothing.

The matrix is checked against the app's routes: a new route that takes a
wave or a participant must be added here, or this test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from fastapi.routing import APIRoute

from services.enrollment.entrypoints.api import router
from tests.support.enrollment import EnrollmentEnv, enrollment_env, mentee, mentor

pytestmark = pytest.mark.integration

CSV = (
    "employee_ref,role,display_name,email,motivation,entity,business_function,job_level,tenure_years,languages,time_zone,learner_profile,themes_wanted\n"
    "I-CSV,mentee,A,a@b.co,m,E,f,9,3,en,Europe/Berlin,mixed,data_ai:2\n"
)
QUALIFIED = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}
NEEDS = {
    "answers": [{"question_id": "priorities", "themes": ["data_ai"]}, {"question_id": "least_at_ease", "themes": []}]
}


@dataclass
class World:
    env: EnrollmentEnv
    programme: str
    de_wave: str
    fr_wave: str
    de_mentor: str
    de_mentee: str
    fr_mentee: str


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async for env in enrollment_env(pool, tmp_path_factory.mktemp("enrollment-isolation")):
        programme = (await env.programme())["programme_id"]
        de, fr = (await env.wave(programme, "DE"))["wave_id"], (await env.wave(programme, "FR"))["wave_id"]
        de_mentor = (await env.enrol(de, mentor("I-DE-M", time_zone="Europe/Berlin")))["participant_id"]
        de_mentee = (await env.enrol(de, mentee("I-DE-E", time_zone="Europe/Berlin")))["participant_id"]
        fr_mentee = (await env.enrol(fr, mentee("I-FR-E")))["participant_id"]
        yield World(env, programme, de, fr, de_mentor, de_mentee, fr_mentee)


# (method, path template, body or CSV text, content type). {wave} and {participant}
# are the DE wave and a DE participant.
COUNTRY_OWNED: list[tuple[str, str, Any, str]] = [
    ("GET", "/v1/waves/{wave}", None, ""),
    ("POST", "/v1/waves/{wave}:close-enrolment", None, ""),
    ("POST", "/v1/waves/{wave}:end", None, ""),
    ("GET", "/v1/waves/{wave}/funnel", None, ""),
    ("POST", "/v1/waves/{wave}/participants", mentee("I-NEW", time_zone="Europe/Berlin"), "application/json"),
    (
        "POST",
        "/v1/waves/{wave}/participants:from-directory",
        {"role": "mentee", "employee_ref": "I-NEW-D", "motivation": "Learn.", "tenure_years": 3,
         "learner_profile": "mixed", "themes_wanted": [{"theme": "data_ai", "level": 1}]},
        "application/json",
    ),
    ("POST", "/v1/waves/{wave}/participants:import", CSV, "text/csv"),
    ("POST", "/v1/waves/{wave}/participants:import?mode=valid_only", CSV, "text/csv"),
    ("GET", "/v1/participants/{participant}", None, ""),
    ("PATCH", "/v1/participants/{participant}", {"sessions_per_month": 3}, "application/json"),
    ("POST", "/v1/participants/{participant}:withdraw", {"reason": "no"}, "application/json"),
    ("POST", "/v1/participants/{participant}/needs-answers", NEEDS, "application/json"),
    ("POST", "/v1/participants/{participant}/qualification", QUALIFIED, "application/json"),
    # The German object the path names is refused before the body's wave is looked at.
    ("POST", "/v1/participants/{participant}:transfer", {"wave_id": str(uuid.uuid4())}, "application/json"),
    ("POST", "/v1/waves/{wave}/participants:transfer",
     {"to_wave_id": str(uuid.uuid4()), "participant_ids": [str(uuid.uuid4())]}, "application/json"),
    # List filters naming another country's objects
    ("GET", "/v1/waves?country=DE", None, ""),
    ("GET", "/v1/participants?country=DE", None, ""),
    ("GET", "/v1/participants?wave_id={wave}", None, ""),
]
#: Routes that take no wave or participant, and why they need not be in the matrix.
NOT_COUNTRY_OWNED = {
    ("POST", "/v1/programmes"): "programmes are organisation-wide; global HR admins only",
    ("GET", "/v1/programmes"): "programmes are organisation-wide",
    ("GET", "/v1/programmes/{programme_id}"): "programmes are organisation-wide",
    ("PATCH", "/v1/programmes/{programme_id}/settings"): "global HR admins only",
    (
        "POST",
        "/v1/participants/{participant_id}:erase",
    ): "GDPR: global HR admins only; another organisation gets 404 (test_enrollment_gdpr)",
    (
        "POST",
        "/v1/programmes/{programme_id}/waves",
    ): "the caller names the country: 403 outside its own (test_wave_access)",
    ("GET", "/v1/waves"): "lists only the caller's countries (test_unfiltered_lists_hold_only_visible_countries)",
    (
        "GET",
        "/v1/participants",
    ): "lists only the caller's countries (test_unfiltered_lists_hold_only_visible_countries)",
}


def ids(case: tuple[str, str, Any, str]) -> str:
    return f"{case[0]} {case[1]}"


async def call(
    world: World, case: tuple[str, str, Any, str], headers: dict[str, str], participant: str | None = None
) -> Any:
    method, template, body, content_type = case
    path = template.format(wave=world.de_wave, participant=participant or world.de_mentor)
    kwargs: dict[str, Any] = {"headers": dict(headers)}
    if isinstance(body, str):
        kwargs["content"] = body
        kwargs["headers"]["content-type"] = content_type
    elif body is not None:
        kwargs["json"] = body
    return await world.env.client.request(method, path, **kwargs)


def test_every_route_is_in_the_matrix_or_listed_as_not_country_owned() -> None:
    covered = {
        (m, t.split("?")[0].replace("{wave}", "{wave_id}").replace("{participant}", "{participant_id}"))
        for m, t, _, _ in COUNTRY_OWNED
    }
    for route in router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods:
            key = (method, route.path_format)
            assert key in covered or key in NOT_COUNTRY_OWNED, f"{method} {route.path_format} is in neither list"


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_a_french_committee_gets_404_for_german_objects(world: World, case: tuple[str, str, Any, str]) -> None:
    before = await world.env.count_events()
    response = await call(world, case, world.env.auth("regional_committee", countries=["FR"]))
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "I-DE" not in response.text  # nothing of the German people
    assert await world.env.count_events() == before


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_another_organisation_gets_404(world: World, case: tuple[str, str, Any, str]) -> None:
    before = await world.env.count_events()
    response = await call(world, case, world.env.auth("hr_admin", org="org-b"))
    if case[1].startswith("/v1/waves?country") or case[1].startswith("/v1/participants?country"):
        # An organisation-wide role lists its own organisation's DE objects: none.
        assert response.status_code == 200 and response.json()["items"] == []
    else:
        assert response.status_code == 404, response.text
    assert await world.env.count_events() == before


@pytest.mark.parametrize("case", [c for c in COUNTRY_OWNED if c[0] == "GET"], ids=ids)
async def test_a_german_committee_reads_them(world: World, case: tuple[str, str, Any, str]) -> None:
    """The 404s above come from the country rule: the DE committee reads the
    same objects (its commands are exercised in test_enrollment_api)."""
    response = await call(world, case, world.env.auth("regional_committee", countries=["DE"]))
    assert response.status_code == 200, response.text


async def test_unfiltered_lists_hold_only_visible_countries(world: World) -> None:
    env = world.env
    fr_committee = env.auth("regional_committee", countries=["FR"])
    waves = (await env.client.get("/v1/waves", headers=fr_committee)).json()["items"]
    participants = (await env.client.get("/v1/participants", headers=fr_committee)).json()["items"]
    assert [w["wave_id"] for w in waves] == [world.fr_wave]
    assert [p["participant_id"] for p in participants] == [world.fr_mentee]
    everything = (await env.client.get("/v1/participants", headers=env.auth())).json()["items"]
    assert len(everything) == 3
    assert (await env.client.get("/v1/participants", headers=env.auth(org="org-b"))).json()["items"] == []


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_ops_sees_no_business_data(world: World, case: tuple[str, str, Any, str]) -> None:
    response = await call(world, case, world.env.auth("ops"))
    assert response.status_code == 403, response.text
    assert (await world.env.client.get("/metrics")).status_code == 200


@pytest.mark.parametrize("case", COUNTRY_OWNED, ids=ids)
async def test_a_participant_reaches_only_its_own_record(world: World, case: tuple[str, str, Any, str]) -> None:
    """A DE participant's token against the other DE participant: 404 where
    participants may act on their own record, 403 where they may not act at all."""
    own = world.env.auth("participant", sub=world.de_mentee)
    response = await call(world, case, own, participant=world.de_mentor)
    assert response.status_code in (403, 404), response.text
    self_service = {
        ("GET", "/v1/participants/{participant}"),
        ("POST", "/v1/participants/{participant}:withdraw"),
        ("POST", "/v1/participants/{participant}/needs-answers"),
    }
    if case[:2] in self_service:
        assert response.status_code == 404


async def test_a_participant_reads_its_own_record_and_programme(world: World) -> None:
    env = world.env
    own = env.auth("participant", sub=world.de_mentee)
    assert (await env.client.get(f"/v1/participants/{world.de_mentee}", headers=own)).json()[
        "participant_id"
    ] == world.de_mentee
    assert (await env.client.get(f"/v1/programmes/{world.programme}", headers=own)).status_code == 200
    stranger = env.auth("participant", sub=world.de_mentee, org="org-b")
    assert (await env.client.get(f"/v1/participants/{world.de_mentee}", headers=stranger)).status_code == 404
