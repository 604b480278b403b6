"""Recording many sessions' outcomes in one call on the real stack: one
event per fact, all or nothing with the failing row named, the
Idempotency-Key replay, and isolation between committees and pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from tests.support.problems import fields, problem
from tests.support.sessions import NOW, SessionsEnv, sessions_env

pytestmark = pytest.mark.integration
PATH = "/v1/sessions:record-outcomes"


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[SessionsEnv]:
    async for environment in sessions_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("sessions-bulk")):
        yield environment


@pytest.fixture(autouse=True)
def reset_clock(env: SessionsEnv) -> None:
    env.clock.now = NOW


def held(session: dict, minutes: int = 50, **extra) -> dict:
    return {"session_id": session["session_id"], "outcome": "held", "actual_minutes": minutes, **extra}


def no_show(session: dict, absent: str = "mentor") -> dict:
    return {"session_id": session["session_id"], "outcome": "no_show", "absent": absent}


async def event_types(env: SessionsEnv, session_ids: list[str]) -> list[str]:
    rows = await env.pool.fetch(
        f"SELECT type FROM {env.schema}.events WHERE stream_id = ANY($1::text[]) AND version > 1 ORDER BY position",
        session_ids,
    )
    return [r["type"].split(".")[2] for r in rows]


async def test_many_outcomes_in_one_call_each_its_own_event(env: SessionsEnv) -> None:
    programme = await env.programme()
    pairs = [await env.form_pair(programme) for _ in range(2)]
    sessions = [await env.schedule(pairs[0], 1), await env.schedule(pairs[0], 3), await env.schedule(pairs[1], 2)]
    env.clock.now = NOW + timedelta(hours=5)
    body = {"outcomes": [held(sessions[0], topics_covered=["data_ai"]), no_show(sessions[1]), held(sessions[2], 40)]}
    headers = {**env.auth(), "Idempotency-Key": "outcomes-1"}
    response = await env.client.post(PATH, json=body, headers=headers)
    assert response.status_code == 200, response.text
    done = response.json()["sessions"]
    assert [s["session_id"] for s in done] == [s["session_id"] for s in sessions]
    assert [s["status"] for s in done] == ["held", "no_show", "held"]
    assert done[2]["held"]["sequence_in_pair"] == 1 and done[0]["held"]["actual_minutes"] == 50
    ids = [s["session_id"] for s in sessions]
    assert await event_types(env, ids) == ["SessionHeld", "SessionNoShow", "SessionHeld"]

    before = await env.count_events()
    again = await env.client.post(PATH, json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == response.json()
    assert await env.count_events() == before
    # The mentor's budget of the month counts both held sessions' minutes.
    budget = await env.client.get(f"/v1/mentors/{pairs[0].mentor_id}/budget", headers=env.auth())
    assert budget.json()["session_minutes"] == 50


async def test_a_bad_row_is_named_and_nothing_is_written(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    first, later = await env.schedule(pair, 1), await env.schedule(pair, 30)
    env.clock.now = NOW + timedelta(hours=2)
    before = await env.count_events()
    cases = [
        ({"outcomes": [held(first), held(later)]}, ["body.outcomes.1"]),  # not started yet
        ({"outcomes": [held(first), held(first)]}, ["body.outcomes"]),
        ({"outcomes": [held(first, 0)]}, ["body.outcomes.0.held.actual_minutes"]),
        ({"outcomes": [held(first, topics_covered=["astrology"])]}, ["body.outcomes.0.topics_covered.0"]),
        ({"outcomes": [{**no_show(first), "absent": "hr"}]}, ["body.outcomes.0.no_show.absent"]),
        ({"outcomes": []}, ["body.outcomes"]),
    ]
    for body, named in cases:
        assert fields(problem(await env.client.post(PATH, json=body, headers=env.auth()), 422)) == named, body
    unknown = {"outcomes": [held(first), {**held(later), "session_id": "00000000-0000-4000-8000-000000000000"}]}
    assert problem(await env.client.post(PATH, json=unknown, headers=env.auth()), 404)["detail"].startswith(
        "outcomes.1: session 00000000-0000-4000-8000-000000000000"
    )
    assert await env.count_events() == before
    assert (await env.client.get(f"/v1/sessions/{first['session_id']}", headers=env.auth())).json()["status"] == \
        "scheduled"


async def test_a_committee_and_a_participant_record_only_their_own(env: SessionsEnv) -> None:
    programme = await env.programme()
    french, german = await env.form_pair(programme), await env.form_pair(programme, country="DE")
    fr_session, de_session = await env.schedule(french, 1), await env.schedule(german, 1)
    env.clock.now = NOW + timedelta(hours=2)
    before = await env.count_events()
    fr_committee = env.auth("regional_committee", countries=["FR"])
    # Another country's session, or another pair's: the same 404 as for none at all, naming the row.
    mixed = {"outcomes": [held(fr_session), held(de_session)]}
    assert problem(await env.client.post(PATH, json=mixed, headers=fr_committee), 404)["detail"].startswith(
        "outcomes.1: session"
    )
    other_member = env.member(german.mentee_id)
    problem(await env.client.post(PATH, json={"outcomes": [held(fr_session)]}, headers=other_member), 404)
    problem(await env.client.post(PATH, json={"outcomes": [held(fr_session)]}, headers=env.auth("ops")), 403)
    problem(await env.client.post(PATH, json={"outcomes": [held(fr_session)]}, headers=env.auth(org="org-b")), 404)
    assert await env.count_events() == before
    mine = await env.client.post(PATH, json={"outcomes": [held(fr_session)]}, headers=env.member(french.mentor_id))
    assert mine.status_code == 200 and mine.json()["sessions"][0]["held"]["by"]["subject"] == str(french.mentor_id)
