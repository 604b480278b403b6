"""The enrollment API on real PostgreSQL and a real broker: every endpoint's
happy path and its 4xx, duplicates, concurrency, Idempotency-Key, the read
tables rebuilt from the log, and the events on Kafka against their schemas."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from jsonschema import Draft202012Validator

from libs.events import registry, topic_for_context
from libs.events.contexts.enrollment import ParticipantRelocated
from libs.events.schemagen import envelope_schema
from libs.runtime.replay import READ_TABLES, replay
from libs.settings import Settings
from services.enrollment import SERVICE
from tests.support.enrollment import (
    EnrollmentEnv,
    enrollment_env,
    mentee,
    mentor,
    programme_body,
    wave_body,
)
from tests.support.kafka import read_topic, relay_until_empty, wait_for
from tests.support.pagination import listed, walk_across_rebuild
from tests.support.problems import fields, problem

pytestmark = pytest.mark.integration

QUALIFIED = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}
NEEDS = {
    "answers": [
        {"question_id": "priorities", "themes": ["cybersecurity"]},
        {"question_id": "least_at_ease", "themes": []},
    ]
}


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EnrollmentEnv]:
    async for environment in enrollment_env(pool, tmp_path_factory.mktemp("enrollment-api")):
        yield environment


async def unchanged(env: EnrollmentEnv, before: int) -> None:
    assert await env.count_events() == before, "a refused request stored an event"


# --------------------------------------------------------------------------- programmes


async def test_programme_create_read_list_and_settings(env: EnrollmentEnv) -> None:
    c, hr = env.client, env.auth("hr_admin", client_id="hr-portal")
    response = await c.post("/v1/programmes", json=programme_body(settings={"languages": ["fr", "EN"]}), headers=hr)
    assert response.status_code == 201, response.text
    created = response.json()
    pid = created["programme_id"]
    assert response.headers["location"].endswith(f"/v1/programmes/{pid}") and response.headers["etag"] == '"1"'
    assert created["settings"]["languages"] == ["fr", "en"]
    assert len(created["settings"]["themes"]) == 7 and created["created_by"] == {
        "subject": "user-1",
        "client_id": "hr-portal",
    }

    assert (await c.get(f"/v1/programmes/{pid}", headers=hr)).json() == created
    committee = env.auth("regional_committee", countries=["FR"])
    assert (await c.get(f"/v1/programmes/{pid}", headers=committee)).status_code == 200  # organisation config

    questions = [{"question_id": f"q{i}", "text": "?", "theme_options": ["data_ai"]} for i in range(3)]
    weights = {**created["settings"]["matching"]["weights"], "theme_fit": 60}
    patch = {"needs_questions": questions, "matching": {"weights": weights, "objective": "max_matched_then_score"}}
    response = await c.patch(f"/v1/programmes/{pid}/settings", json=patch, headers={**hr, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert response.headers["etag"] == '"2"' and changed["version"] == 2
    assert [q["question_id"] for q in changed["settings"]["needs_questions"]] == ["q0", "q1", "q2"]
    assert changed["settings"]["matching"]["weights"]["theme_fit"] == 60
    assert changed["settings"]["themes"] == created["settings"]["themes"]  # what was not sent stays

    before = await env.count_events()
    stale = await c.patch(
        f"/v1/programmes/{pid}/settings", json={"languages": ["de"]}, headers={**hr, "If-Match": '"1"'}
    )
    assert problem(stale, 412)["type"] == "urn:binome:problem:stale-version"
    await unchanged(env, before)


async def test_programme_list_is_paginated_and_per_organisation(env: EnrollmentEnv) -> None:
    for i in range(3):
        await env.programme(name=f"Listed {i}")
    await env.post("/v1/programmes", programme_body(name="Other org"), env.auth(org="org-b"))
    names: list[str] = []
    url = "/v1/programmes?limit=2"
    while url:
        page = (await env.client.get(url, headers=env.auth())).json()
        assert len(page["items"]) <= 2
        names += [p["name"] for p in page["items"]]
        url = f"/v1/programmes?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert len(names) == len(set(names)) and {"Listed 0", "Listed 1", "Listed 2"} <= set(names)
    assert "Other org" not in names


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": ""}, ["body.name"]),
        ({"name": "x", "colour": "red"}, ["body.colour"]),
        ({"name": "x", "mode": "sideways"}, ["body.mode"]),
        (
            {"name": "x", "settings": {"needs_questions": [{"question_id": "q1", "text": "?"}]}},
            ["body.settings.needs_questions"],
        ),
        ({"name": "x", "settings": {"languages": None}}, ["body.settings.languages"]),
        (
            {"name": "x", "mode": "mutual", "settings": {"seniority_rule": {"enforced": True}}},
            ["body.settings.seniority_rule.enforced"],
        ),
        (
            {
                "name": "x",
                "settings": {
                    "needs_questions": [
                        {"question_id": "q1", "text": "?", "theme_options": ["cooking"]},
                        {"question_id": "q2", "text": "?"},
                    ]
                },
            },
            ["body.settings.needs_questions.0.theme_options"],
        ),
    ],
)
async def test_bad_programmes_are_422_naming_the_field_and_store_nothing(
    env: EnrollmentEnv, body: dict[str, Any], expected: list[str]
) -> None:
    before = await env.count_events()
    assert fields(problem(await env.client.post("/v1/programmes", json=body, headers=env.auth()), 422)) == expected
    await unchanged(env, before)


async def test_programme_access(env: EnrollmentEnv) -> None:
    c = env.client
    pid = (await env.programme())["programme_id"]
    assert problem(await c.post("/v1/programmes", json=programme_body()), 401)["status"] == 401
    for roles in (("regional_committee",), ("ops",), ("participant",)):
        problem(await c.post("/v1/programmes", json=programme_body(), headers=env.auth(*roles, countries=["FR"])), 403)
        problem(await c.patch(f"/v1/programmes/{pid}/settings", json={}, headers=env.auth(*roles)), 403)
    problem(await c.get(f"/v1/programmes/{pid}", headers=env.auth("ops")), 403)
    problem(await c.get(f"/v1/programmes/{pid}", headers=env.auth(org="org-b")), 404)
    problem(await c.get(f"/v1/programmes/{pid}", headers=env.auth("participant", sub="someone")), 404)
    problem(await c.get("/v1/programmes/00000000-0000-0000-0000-000000000000", headers=env.auth()), 404)
    problem(await c.get("/v1/programmes/not-a-uuid", headers=env.auth()), 422)


# --------------------------------------------------------------------------- waves


async def test_wave_lifecycle_listing_and_funnel(env: EnrollmentEnv) -> None:
    c, hr = env.client, env.auth()
    pid = (await env.programme())["programme_id"]
    fr = await env.post(
        f"/v1/programmes/{pid}/waves", wave_body("fr"), env.auth("regional_committee", countries=["FR"])
    )
    assert fr["country"] == "FR" and fr["status"] == "open" and fr["opened_by"]["subject"] == "user-1"
    de = await env.wave(pid, "DE")
    wid = fr["wave_id"]
    assert (await c.get(f"/v1/waves/{wid}", headers=hr)).json() == fr

    listed = (await c.get(f"/v1/waves?programme_id={pid}", headers=hr)).json()["items"]
    assert [w["wave_id"] for w in listed] == sorted([wid, de["wave_id"]])  # by wave id
    assert [
        w["wave_id"] for w in (await c.get(f"/v1/waves?programme_id={pid}&country=de", headers=hr)).json()["items"]
    ] == [de["wave_id"]]
    committee_view = (await c.get("/v1/waves", headers=env.auth("regional_committee", countries=["FR"]))).json()[
        "items"
    ]
    assert {w["country"] for w in committee_view} == {"FR"}

    m = await env.enrol(wid, mentor("W-MENTOR"))
    await env.enrol(wid, mentee("W-MENTEE-1"))
    await env.enrol(wid, mentee("W-MENTEE-2", themes_wanted=[]))
    gone = await env.enrol(wid, mentee("W-MENTEE-3"))
    await env.post(f"/v1/participants/{m['participant_id']}/qualification", QUALIFIED)
    await env.post(f"/v1/participants/{gone['participant_id']}:withdraw", {"reason": "Moved"})
    funnel = (await c.get(f"/v1/waves/{wid}/funnel", headers=hr)).json()
    assert funnel["mentees"] == {"enrolled": 3, "withdrawn": 1, "active": 2, "needs_answered": 0, "matchable": 1}
    assert funnel["mentors"] == {
        "enrolled": 1,
        "withdrawn": 0,
        "active": 1,
        "assessed": 1,
        "qualified": 1,
        "matchable": 1,
        "mentee_slots": 2,
    }
    assert funnel["possible_pairs"] == 1 and funnel["target_pairs"] == 30

    before = await env.count_events()
    problem(await c.post(f"/v1/waves/{wid}:end", headers=hr), 409)  # open: close enrolment first
    await unchanged(env, before)
    closed = await env.post(f"/v1/waves/{wid}:close-enrolment", {})
    assert closed["status"] == "enrolment_closed" and closed["version"] == 2
    assert (await c.get(f"/v1/waves?programme_id={pid}&status=enrolment_closed", headers=hr)).json()["items"][0][
        "wave_id"
    ] == wid
    refused = problem(await c.post(f"/v1/waves/{wid}/participants", json=mentee("LATE"), headers=hr), 409)
    assert "enrolment is closed" in refused["detail"]
    problem(await c.post(f"/v1/waves/{wid}:close-enrolment", headers=hr), 409)
    assert (await env.post(f"/v1/waves/{wid}:end", {}))["status"] == "ended"
    problem(await c.post(f"/v1/participants/{m['participant_id']}:withdraw", json={"reason": "x"}, headers=hr), 409)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"country": "FRA"}, ["body.country"]),
        ({"ends_on": "2025-01-01"}, ["body.ends_on"]),
        ({"target_pairs": 0}, ["body.target_pairs"]),
        ({"enrolment_closes_on": "2099-07-01"}, ["body.enrolment_closes_on"]),  # after the last day
        ({"enrolment_closes_on": "tomorrow"}, ["body.enrolment_closes_on"]),
        ({"status": "ended"}, ["body.status"]),
    ],
)
async def test_bad_waves_are_422(env: EnrollmentEnv, overrides: dict[str, Any], expected: list[str]) -> None:
    pid = (await env.programme())["programme_id"]
    before = await env.count_events()
    response = await env.client.post(f"/v1/programmes/{pid}/waves", json=wave_body(**overrides), headers=env.auth())
    assert fields(problem(response, 422)) == expected
    await unchanged(env, before)


async def test_wave_access(env: EnrollmentEnv) -> None:
    c = env.client
    pid = (await env.programme())["programme_id"]
    fr_committee = env.auth("regional_committee", countries=["FR"])
    denied = problem(await c.post(f"/v1/programmes/{pid}/waves", json=wave_body("DE"), headers=fr_committee), 403)
    assert denied["type"] == "urn:binome:problem:forbidden"
    problem(await c.post(f"/v1/programmes/{pid}/waves", json=wave_body(), headers=env.auth("ops")), 403)
    problem(await c.post(f"/v1/programmes/{pid}/waves", json=wave_body(), headers=env.auth(org="org-b")), 404)
    problem(
        await c.post("/v1/programmes/00000000-0000-0000-0000-000000000000/waves", json=wave_body(), headers=env.auth()),
        404,
    )
    problem(await c.get("/v1/waves?limit=500", headers=env.auth()), 422)


# --------------------------------------------------------------------------- participants


async def test_participant_lifecycle(env: EnrollmentEnv) -> None:
    c, hr = env.client, env.auth()
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    response = await c.post(f"/v1/waves/{wid}/participants", json=mentee("P-1", manager_ref="BOSS-1"), headers=hr)
    assert response.status_code == 201, response.text
    p = response.json()
    ppid = p["participant_id"]
    assert response.headers["location"].endswith(f"/v1/participants/{ppid}")
    assert (p["role"], p["country"], p["status"], p["matchable"], p["version"]) == ("mentee", "FR", "enrolled", True, 1)
    assert p["profile"]["generation_band"] == "gen_x" and "birth_year" not in p["profile"]
    assert p["manager_ref"] == "BOSS-1" and p["email"] == "p-1@example.com"

    me = env.auth("participant", sub=ppid)
    assert (await c.get(f"/v1/participants/{ppid}", headers=me)).json() == p
    assert (await c.get(f"/v1/programmes/{pid}", headers=me)).status_code == 200  # its own programme
    problem(await c.get("/v1/participants", headers=me), 403)  # lists are for HR

    response = await c.patch(
        f"/v1/participants/{ppid}",
        json={"time_zone": "Europe/Berlin", "email": "new@example.com", "manager_ref": None},
        headers={**hr, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["profile"]["time_zone"] == "Europe/Berlin" and updated["email"] == "new@example.com"
    assert updated["manager_ref"] is None and response.headers["etag"] == '"2"'
    problem(
        await c.patch(f"/v1/participants/{ppid}", json={"sessions_per_month": 2}, headers={**hr, "If-Match": '"1"'}),
        412,
    )

    answered = (
        await c.post(
            f"/v1/participants/{ppid}/needs-answers",
            json={**NEEDS, "comments": {"priorities": "Security first"}},
            headers=me,
        )
    ).json()
    assert [t["theme"] for t in answered["profile"]["themes_wanted"]] == ["data_ai", "cybersecurity"]
    assert (
        answered["needs"]["comments"] == {"priorities": "Security first"}
        and answered["needs"]["answered_by"]["subject"] == ppid
    )

    withdrawn = (await c.post(f"/v1/participants/{ppid}:withdraw", json={"reason": "Too busy"}, headers=me)).json()
    assert (
        withdrawn["status"] == "withdrawn"
        and not withdrawn["matchable"]
        and withdrawn["withdrawal"]["reason"] == "Too busy"
    )
    problem(await c.post(f"/v1/participants/{ppid}:withdraw", json={"reason": "again"}, headers=hr), 409)
    # Withdrawn, the person may enrol again (one *active* enrolment per person per programme).
    again = await env.enrol(wid, mentee("P-1"))
    assert again["participant_id"] != ppid


async def test_mentor_qualification(env: EnrollmentEnv) -> None:
    c, hr = env.client, env.auth()
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    m = await env.enrol(wid, mentor("Q-1", capacity=None))
    assert m["profile"]["capacity"] == 1 and not m["matchable"]
    low = await env.post(
        f"/v1/participants/{m['participant_id']}/qualification", {**QUALIFIED, "training_completed": False}
    )
    assert low["qualification"]["qualified"] is False and not low["matchable"]
    high = await env.post(f"/v1/participants/{m['participant_id']}/qualification", QUALIFIED)
    assert (
        high["qualification"]["qualified"]
        and high["matchable"]
        and high["qualification"]["rule"]["min_case_study_score"] == 60
    )
    problem(
        await c.post(
            f"/v1/participants/{m['participant_id']}/qualification", json={**QUALIFIED, "teaching_ease": 6}, headers=hr
        ),
        422,
    )
    problem(await c.post(f"/v1/participants/{m['participant_id']}/needs-answers", json=NEEDS, headers=hr), 409)
    me = env.auth("participant", sub=m["participant_id"])
    problem(await c.post(f"/v1/participants/{m['participant_id']}/qualification", json=QUALIFIED, headers=me), 403)
    mentee_id = (await env.enrol(wid, mentee("Q-2")))["participant_id"]
    problem(await c.post(f"/v1/participants/{mentee_id}/qualification", json=QUALIFIED, headers=hr), 409)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (mentee("B-1", themes_wanted=[{"theme": "cooking", "level": 1}]), ["body.themes_wanted.0.theme"]),
        (mentee("B-2", capacity=2), ["body.capacity"]),
        (mentor("B-3", capacity=4), ["body.capacity"]),
        (mentor("B-4", themes_offered=[]), ["body.themes_offered"]),
        (mentee("B-5", themes_offered=[{"theme": "data_ai", "level": 3}]), ["body.themes_offered"]),
        (mentee("B-6", email="not-an-email", time_zone="Mars/Olympus"), ["body.email", "body.time_zone"]),
        (mentee("B-7", languages=["de"]), ["body.languages"]),
        (mentee("B-8", country="DE"), ["body.country"]),
        (mentee("B-9", birth_year=1999, generation_band="gen_x"), ["body.generation_band"]),
        (mentee("B-10", status="withdrawn"), ["body.status"]),
        ({k: v for k, v in mentee("B-11").items() if k != "role"}, ["body.role"]),
    ],
)
async def test_bad_enrolments_are_422_naming_the_field(
    env: EnrollmentEnv, body: dict[str, Any], expected: list[str]
) -> None:
    pid = (await env.programme(settings={"languages": ["fr", "en"]}))["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    before = await env.count_events()
    response = await env.client.post(f"/v1/waves/{wid}/participants", json=body, headers=env.auth())
    assert fields(problem(response, 422)) == expected
    await unchanged(env, before)


async def test_profile_update_refuses_fixed_fields_and_nulls(env: EnrollmentEnv) -> None:
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    ppid = (await env.enrol(wid, mentor("U-1")))["participant_id"]
    before = await env.count_events()
    for body, expected in (
        ({"country": "DE", "time_zone": "Europe/Berlin"}, ["body.country"]),
        ({"role": "mentee"}, ["body.role"]),
        ({"employee_ref": "OTHER"}, ["body.employee_ref"]),
        ({"wave_id": wid}, ["body.wave_id"]),
        ({"time_zone": None}, ["body.time_zone"]),
        ({"capacity": 5}, ["body.capacity"]),
        ({"themes_offered": [{"theme": "cooking", "level": 2}]}, ["body.themes_offered.0.theme"]),
    ):
        response = await env.client.patch(f"/v1/participants/{ppid}", json=body, headers=env.auth())
        assert fields(problem(response, 422)) == expected, body
    await unchanged(env, before)
    unchanged_doc = (
        await env.client.patch(f"/v1/participants/{ppid}", json={"capacity": 2}, headers=env.auth())
    ).json()
    assert unchanged_doc["version"] == 1  # nothing changed, nothing recorded


async def test_participant_lists_filter_and_paginate(env: EnrollmentEnv) -> None:
    c, hr = env.client, env.auth()
    pid = (await env.programme())["programme_id"]
    fr, de = (await env.wave(pid, "FR"))["wave_id"], (await env.wave(pid, "DE"))["wave_id"]
    ids = [(await env.enrol(fr, mentee(f"L-{i}")))["participant_id"] for i in range(5)]
    mentor_id = (await env.enrol(fr, mentor("L-M")))["participant_id"]
    de_id = (await env.enrol(de, mentee("L-DE", themes_wanted=[{"theme": "e_commerce", "level": 2}])))["participant_id"]
    await env.post(f"/v1/participants/{ids[0]}:withdraw", {"reason": "x"})

    async def listed(query: str, headers: dict[str, str] | None = None) -> list[str]:
        response = await c.get(f"/v1/participants?programme_id={pid}&{query}", headers=headers or hr)
        assert response.status_code == 200, response.text
        return [p["participant_id"] for p in response.json()["items"]]

    # Lists are in participant id order (stable across a rebuild).
    assert await listed("") == sorted([*ids, mentor_id, de_id])
    assert await listed("role=mentor") == [mentor_id]
    assert await listed("status=withdrawn") == [ids[0]]
    assert await listed("theme=e_commerce") == [de_id]
    assert await listed("theme=cybersecurity") == [mentor_id]  # offered themes count too
    assert await listed("country=de") == [de_id]
    assert await listed(f"wave_id={de}") == [de_id]
    assert await listed("matchable=false") == sorted([ids[0], mentor_id])
    assert await listed("", env.auth("regional_committee", countries=["FR"])) == sorted([*ids, mentor_id])

    first = (await c.get(f"/v1/participants?programme_id={pid}&limit=3", headers=hr)).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = (
        await c.get(f"/v1/participants?programme_id={pid}&limit=3&cursor={first['next_cursor']}", headers=hr)
    ).json()
    third = (
        await c.get(f"/v1/participants?programme_id={pid}&limit=3&cursor={second['next_cursor']}", headers=hr)
    ).json()
    assert [p["participant_id"] for p in first["items"] + second["items"] + third["items"]] == sorted(
        [*ids, mentor_id, de_id]
    )
    assert third["next_cursor"] is None
    foreign = await c.get(f"/v1/participants?programme_id={pid}&role=mentee&cursor={first['next_cursor']}", headers=hr)
    assert fields(problem(foreign, 422)) == ["query.cursor"]
    assert fields(problem(await c.get("/v1/participants?role=boss", headers=hr), 422)) == ["query.role"]


# --------------------------------------------------------------------------- duplicates and concurrency


async def test_duplicate_enrolment_is_409_naming_the_existing_participant(env: EnrollmentEnv) -> None:
    pid = (await env.programme())["programme_id"]
    fr, de = (await env.wave(pid, "FR"))["wave_id"], (await env.wave(pid, "DE"))["wave_id"]
    first = await env.enrol(fr, mentee("D-1"))
    before = await env.count_events()
    body = problem(await env.client.post(f"/v1/waves/{de}/participants", json=mentee("D-1"), headers=env.auth()), 409)
    assert body["type"] == "urn:binome:problem:duplicate-enrolment"
    assert body["existing_participant_id"] == first["participant_id"] and first["participant_id"] in body["detail"]
    assert body["field"] == "body.employee_ref"
    # A committee that cannot see the existing enrolment learns it exists, not where.
    de_committee = env.auth("regional_committee", countries=["DE"])
    hidden = problem(
        await env.client.post(f"/v1/waves/{de}/participants", json=mentee("D-1"), headers=de_committee), 409
    )
    assert hidden["existing_participant_id"] is None and first["participant_id"] not in hidden["detail"]
    await unchanged(env, before)
    # Another programme is another enrolment.
    other = (await env.programme())["programme_id"]
    await env.enrol((await env.wave(other))["wave_id"], mentee("D-1"))


async def run_blocked(env: EnrollmentEnv, *requests: Any) -> list[Any]:
    """Run ``requests`` concurrently with every append held back until all of
    them are waiting to append: they all read the same versions first."""
    async with env.pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {env.schema}.events IN EXCLUSIVE MODE")  # reads go on, inserts wait
        tasks = [asyncio.create_task(r) for r in requests]

        async def queued() -> bool:
            waiting = await env.pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
                f"{env.schema}.events",
            )
            return waiting >= len(requests)

        await wait_for(queued, timeout=10)
    return await asyncio.gather(*tasks)


async def test_concurrent_conflicting_updates_make_one_409(env: EnrollmentEnv) -> None:
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    ppid = (await env.enrol(wid, mentor("C-1")))["participant_id"]
    url = f"/v1/participants/{ppid}"
    responses = await run_blocked(
        env,
        env.client.patch(url, json={"capacity": 3}, headers=env.auth()),
        env.client.patch(url, json={"capacity": 1}, headers=env.auth()),
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert problem(loser, 409)["type"] == "urn:binome:problem:concurrent-change"
    winner = next(r for r in responses if r.status_code == 200).json()
    now = (await env.client.get(url, headers=env.auth())).json()
    assert now["version"] == 2 and now["profile"]["capacity"] == winner["profile"]["capacity"]


async def test_concurrent_enrolments_of_one_person_make_one_409(env: EnrollmentEnv) -> None:
    pid = (await env.programme())["programme_id"]
    fr, de = (await env.wave(pid, "FR"))["wave_id"], (await env.wave(pid, "DE"))["wave_id"]
    responses = await run_blocked(
        env,
        env.client.post(f"/v1/waves/{fr}/participants", json=mentee("RACE-1"), headers=env.auth()),
        env.client.post(f"/v1/waves/{de}/participants", json=mentee("RACE-1"), headers=env.auth()),
    )
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 201).json()
    loser = problem(next(r for r in responses if r.status_code == 409), 409)
    assert loser["existing_participant_id"] == winner["participant_id"]
    listed = (await env.client.get(f"/v1/participants?programme_id={pid}", headers=env.auth())).json()["items"]
    assert [p["participant_id"] for p in listed] == [winner["participant_id"]]


async def test_an_enrolment_opens_no_savepoint(env: EnrollmentEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """A savepoint is two round trips (SAVEPOINT, RELEASE): the append and
    the participants' read model go without (bench/README.md, fifth pass);
    the race above still names its winner, from outside the transaction."""
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    savepoints: list[str] = []
    transaction = asyncpg.Connection.transaction

    def noting_transaction(conn: asyncpg.Connection, **options: Any) -> Any:
        if conn.is_in_transaction():  # a transaction inside one: a savepoint
            savepoints.append("savepoint")
        return transaction(conn, **options)

    monkeypatch.setattr(asyncpg.Connection, "transaction", noting_transaction)
    created = await env.client.post(f"/v1/waves/{wid}/participants", json=mentee("SP-1"), headers=env.auth())
    assert created.status_code == 201, created.text
    assert savepoints == []


# --------------------------------------------------------------------------- Idempotency-Key


async def test_idempotency_key_on_enrolment(env: EnrollmentEnv) -> None:
    c = env.client
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    headers = {**env.auth(), "Idempotency-Key": "enrol-K-1"}
    first = await c.post(f"/v1/waves/{wid}/participants", json=mentee("K-1"), headers=headers)
    before = await env.count_events()
    retry = await c.post(f"/v1/waves/{wid}/participants", json=mentee("K-1"), headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == first.headers["location"] and retry.headers["etag"] == first.headers["etag"]
    reused = await c.post(f"/v1/waves/{wid}/participants", json=mentee("K-2"), headers=headers)
    assert problem(reused, 422)["type"] == "urn:binome:problem:idempotency-key-reused"
    await unchanged(env, before)
    # A refused request stores no response: the key stays usable.
    closed_headers = {**env.auth(), "Idempotency-Key": "enrol-K-3"}
    bad = await c.post(f"/v1/waves/{wid}/participants", json=mentee("K-3", capacity=1), headers=closed_headers)
    problem(bad, 422)
    assert (
        await c.post(f"/v1/waves/{wid}/participants", json=mentee("K-3"), headers=closed_headers)
    ).status_code == 201


async def test_idempotency_key_on_a_transition(env: EnrollmentEnv) -> None:
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    headers = {**env.auth(), "Idempotency-Key": "close-1"}
    first = await env.client.post(f"/v1/waves/{wid}:close-enrolment", headers=headers)
    retry = await env.client.post(f"/v1/waves/{wid}:close-enrolment", headers=headers)
    assert first.status_code == retry.status_code == 200 and retry.json() == first.json()  # not a 409


# --------------------------------------------------------------------------- the log


async def test_read_tables_rebuild_from_the_log(env: EnrollmentEnv) -> None:
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    ppid = (await env.enrol(wid, mentee("R-1")))["participant_id"]
    await env.post(f"/v1/participants/{ppid}/needs-answers", NEEDS)

    async def snapshot() -> list[list[str]]:
        tables = []
        for table, key in (("programmes", "programme_id"), ("waves", "wave_id"), ("participants", "participant_id")):
            rows = await env.pool.fetch(
                f"SELECT (to_jsonb(t) - 'row_id')::text FROM {env.schema}.{table} t ORDER BY {key}"
            )
            tables.append([r[0] for r in rows])
        return tables

    before = await snapshot()
    # `binome replay enrollment`, over this test's schema.
    service = dataclasses.replace(SERVICE, name=env.schema)
    rebuilt = await replay(
        env.pool, Settings(data_dir=env.data_dir, vault_schema=env.vault.schema), [service], env.schema
    )
    # The directory consumer reads another context's log: none here.
    assert {k: v.applied for k, v in rebuilt.items()} == {
        "read-tables": await env.count_events(),
        "enrollment-directory": 0,
    }
    assert await snapshot() == before


async def test_a_cursor_held_across_a_rebuild_neither_skips_nor_repeats(env: EnrollmentEnv) -> None:
    """Lists page by each row's own id, not by row_id: `binome replay
    enrollment read-tables` renumbers every row."""
    pid = (await env.programme())["programme_id"]
    wid = (await env.wave(pid))["wave_id"]
    for i in range(4):
        await env.enrol(wid, mentee(f"C-{i}"))
    service = dataclasses.replace(SERVICE, name=env.schema)
    settings = Settings(data_dir=env.data_dir, vault_schema=env.vault.schema)

    async def rebuild_tables() -> None:
        await replay(env.pool, settings, [service], env.schema, READ_TABLES)

    query = {"wave_id": wid}
    everything = await listed(env.client, "/v1/participants", query, env.auth())
    assert len(everything) == 4
    walked = await walk_across_rebuild(env.client, "/v1/participants", query, env.auth(), rebuild_tables)
    assert walked == everything


async def test_events_reach_kafka_and_validate_against_their_schemas(env: EnrollmentEnv, kafka_bootstrap: str) -> None:
    # Every event type of the context, at least once.
    pid = (await env.programme())["programme_id"]
    await env.client.patch(f"/v1/programmes/{pid}/settings", json={"languages": ["en", "de"]}, headers=env.auth())
    wid = (await env.wave(pid, "DE"))["wave_id"]
    m = (await env.enrol(wid, mentor("K-M")))["participant_id"]
    e = (await env.enrol(wid, mentee("K-E")))["participant_id"]
    await env.client.patch(f"/v1/participants/{e}", json={"job_level": 12}, headers=env.auth())
    await env.post(f"/v1/participants/{e}/needs-answers", NEEDS)
    await env.post(f"/v1/participants/{m}/qualification", QUALIFIED)
    await env.post(f"/v1/participants/{e}:withdraw", {"reason": "x"})
    await env.post(f"/v1/participants/{m}:erase", {})
    moved = (await env.enrol(wid, mentee("K-T")))["participant_id"]
    other = (await env.wave(pid, "FR"))["wave_id"]
    await env.post(f"/v1/participants/{moved}:transfer", {"wave_id": other})
    await env.post(f"/v1/waves/{wid}:close-enrolment", {})
    await env.post(f"/v1/waves/{wid}:end", {})

    await relay_until_empty(env.pool, env.schema, kafka_bootstrap, service="enrollment")
    total = await env.count_events()
    records = await read_topic(kafka_bootstrap, topic_for_context("enrollment", env.topic_prefix), until=total)
    assert len(records) == total
    validators: dict[str, Draft202012Validator] = {}
    seen: set[str] = set()
    for record in records:
        envelope = orjson.loads(record.value)
        type_ = envelope["type"]
        if type_ not in validators:
            validators[type_] = Draft202012Validator(
                envelope_schema(registry.models[type_]), format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        validators[type_].validate(envelope)
        assert record.key.decode() == envelope["subject"] and envelope["source"] == "/binome/enrollment"
        assert envelope["tenant"] in ("org-a", "org-b") and envelope["correlationid"]
        if type_.split(".")[2] != "ProgrammeCreated" and "Settings" not in type_:
            assert envelope["country"] in ("FR", "DE"), type_
        assert envelope["data"]["actor"]["subject"]
        seen.add(type_)
    # ParticipantRelocated comes from the HR directory only (test_directory_effects validates it).
    relocated = ParticipantRelocated.event_type()
    assert seen == {t for t in registry.models if t.startswith("binome.enrollment.") and t != relocated}


async def test_openapi_documents_every_route_and_the_import_formats(env: EnrollmentEnv) -> None:
    document = (await env.client.get("/openapi.json")).json()
    paths = document["paths"]
    # The service's 22 operations (two transfers and the enrolment from the HR
    # directory among them), plus the audit trail every Binome API serves, its
    # part of a participant's GDPR export and the dead letters of its consumer
    # (the HR directory: 2).
    assert len([m for p in paths.values() for m in p]) == 26
    assert {"/v1/audit", "/v1/participants/{participant_id}/export"} <= paths.keys()
    imported = paths["/v1/waves/{wave_id}/participants:import"]["post"]
    assert set(imported["requestBody"]["content"]) == {"text/csv", "application/json"}
    assert "application/problem+json" in imported["responses"]["422"]["content"]
    assert {"cursor", "limit", "country", "role", "status", "theme"} <= {
        p["name"] for p in paths["/v1/participants"]["get"]["parameters"]
    }


async def test_a_participants_document_is_stored_whole_with_its_text(env: EnrollmentEnv) -> None:
    """Lists read ``doc_text``, the document converted to text once when
    written, from rows PostgreSQL keeps whole: no compression to undo and no
    jsonb to convert on every read (migration 0005). A row of a participant
    passes the 2 kB at which PostgreSQL compresses by default."""
    programme = await env.programme()
    wave = await env.wave(programme["programme_id"])
    pid = (await env.enrol(wave["wave_id"], mentee("E-TEXT-1", motivation="m" * 1500)))["participant_id"]
    renamed = await env.client.patch(f"/v1/participants/{pid}", json={"display_name": "Renamed"}, headers=env.auth())
    assert renamed.status_code == 200, renamed.text

    row = await env.pool.fetchrow(
        f"""SELECT doc_text = doc::text AS same, pg_column_size(doc_text) AS size,
                   pg_column_compression(doc) AS doc_compressed, pg_column_compression(doc_text) AS text_compressed
            FROM {env.schema}.participants WHERE participant_id = $1::uuid""",
        pid,
    )
    assert row["same"] and row["size"] > 2000
    assert (row["doc_compressed"], row["text_compressed"]) == (None, None)
    listed_page = await env.client.get(f"/v1/participants?wave_id={wave['wave_id']}", headers=env.auth())
    assert [p for p in listed_page.json()["items"] if p["participant_id"] == pid] == [renamed.json()]
