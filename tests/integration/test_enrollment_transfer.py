"""Moving a participant to another wave or country (issue 19) through
enrollment's API: the history and who approved it, a committee only between
its own countries, HR across the organisation's, bad input a 4xx with
nothing written, and the same Idempotency-Key answered once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.enrollment import EnrollmentEnv, enrollment_env, mentee, wave_body
from tests.support.problems import fields, problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, tmp_path_factory) -> AsyncIterator[EnrollmentEnv]:
    async for environment in enrollment_env(pool, tmp_path_factory.mktemp("transfer")):
        yield environment


async def programme_with_waves(env: EnrollmentEnv, *countries: str) -> tuple[str, dict[str, str]]:
    programme = (await env.programme())["programme_id"]
    waves = {}
    for country in countries:
        body = wave_body(country, name=f"{country} {uuid.uuid4().hex[:6]}")
        waves[country] = (await env.post(f"/v1/programmes/{programme}/waves", body))["wave_id"]
    return programme, waves


async def person(env: EnrollmentEnv, wave_id: str, country: str = "FR") -> str:
    body = mentee(f"E-{uuid.uuid4().hex[:8]}", languages=["fr", "en"])
    return (await env.post(f"/v1/waves/{wave_id}/participants", body))["participant_id"]


async def test_hr_moves_a_participant_to_another_country_keeping_its_history(env: EnrollmentEnv) -> None:
    _, waves = await programme_with_waves(env, "FR", "DE")
    pid = await person(env, waves["FR"])
    headers = {**env.auth(sub="hr-global"), "Idempotency-Key": "move-1"}
    first = await env.client.post(f"/v1/participants/{pid}:transfer", json={"wave_id": waves["DE"]}, headers=headers)
    assert first.status_code == 200, first.text
    moved = first.json()
    assert (moved["wave_id"], moved["country"], moved["status"]) == (waves["DE"], "DE", "enrolled")
    [transfer] = moved["transfers"]
    assert (transfer["from_wave_id"], transfer["from_country"]) == (waves["FR"], "FR")
    assert (transfer["to_wave_id"], transfer["to_country"]) == (waves["DE"], "DE")
    assert transfer["approved_by"]["subject"] == "hr-global"
    before = await env.count_events()
    again = await env.client.post(f"/v1/participants/{pid}:transfer", json={"wave_id": waves["DE"]}, headers=headers)
    assert again.status_code == 200 and again.json() == moved  # the same key: answered once
    assert await env.count_events() == before
    listed = (await env.client.get("/v1/participants", params={"wave_id": waves["DE"]}, headers=env.auth())).json()
    assert pid in [p["participant_id"] for p in listed["items"]]
    last = await env.pool.fetchrow(
        f"SELECT envelope->>'type' AS type, envelope->>'country' AS country FROM {env.schema}.events"
        " WHERE stream_id = $1 ORDER BY version DESC LIMIT 1", pid,
    )
    assert (last["type"], last["country"]) == ("binome.enrollment.ParticipantTransferred.v1", "DE")


async def test_a_committee_moves_people_between_its_own_countries_only(env: EnrollmentEnv) -> None:
    _, waves = await programme_with_waves(env, "FR", "DE", "BR")
    pid = await person(env, waves["FR"])
    europe = env.auth("regional_committee", countries=["FR", "DE"], sub="committee-eu")
    france = env.auth("regional_committee", countries=["FR"], sub="committee-fr")
    brazil = env.auth("regional_committee", countries=["BR"], sub="committee-br")
    before = await env.count_events()
    for headers, target in ((france, "DE"), (europe, "BR"), (brazil, "BR")):
        refused = await env.client.post(f"/v1/participants/{pid}:transfer", json={"wave_id": waves[target]}, headers=headers)
        problem(refused, 404)  # a wave or a person of a country it does not hold: as if none existed
    assert await env.count_events() == before
    ok = await env.client.post(f"/v1/participants/{pid}:transfer", json={"wave_id": waves["DE"]}, headers=europe)
    assert ok.status_code == 200 and ok.json()["transfers"][0]["approved_by"]["subject"] == "committee-eu"
    participant = env.auth("participant", sub=pid)
    problem(await env.client.post(f"/v1/participants/{pid}:transfer", json={"wave_id": waves["FR"]},
                                  headers=participant), 403)


async def test_bad_transfers_are_refused_and_write_nothing(env: EnrollmentEnv) -> None:
    _, waves = await programme_with_waves(env, "FR", "DE", "IT")
    _, elsewhere = await programme_with_waves(env, "FR")
    pid = await person(env, waves["FR"])
    await env.post(f"/v1/waves/{waves['DE']}:close-enrolment", {})
    before = await env.count_events()

    async def transfer(body):
        return await env.client.post(f"/v1/participants/{pid}:transfer", json=body, headers=env.auth())

    assert fields(problem(await transfer({"wave_id": waves["FR"]}), 422)) == ["body.wave_id"]  # its own wave
    assert fields(problem(await transfer({"wave_id": elsewhere["FR"]}), 422)) == ["body.wave_id"]  # another programme
    assert fields(problem(await transfer({"wave_id": "not-a-uuid"}), 422)) == ["body.wave_id"]
    assert fields(problem(await transfer({}), 422)) == ["body.wave_id"]
    assert "enrolment is closed" in problem(await transfer({"wave_id": waves["DE"]}), 409)["detail"]
    problem(await transfer({"wave_id": str(uuid.uuid4())}), 404)
    assert await env.count_events() == before
    await env.post(f"/v1/participants/{pid}:withdraw", {"reason": "Left."})
    assert "has withdrawn" in problem(await transfer({"wave_id": waves["IT"]}), 409)["detail"]
    assert await env.count_events() == before + 1  # the withdrawal only
