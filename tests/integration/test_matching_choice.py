"""The choice flow on the real stack: explained top-k suggestions, a ranked
choice, a decline moving to the next choice, capacity never exceeded (also
under concurrent choices), and who may see and act on what."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.matching import MatchingEnv, matching_env
from tests.support.problems import problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("matching-choice"), kafka_bootstrap):
        yield environment


async def wave_with(env: MatchingEnv, mentors: int, capacity: int = 1) -> tuple[str, str, list[str]]:
    """A wave with one mentee and mentors ranked by how well they know its theme (best first)."""
    programme = await env.programme()
    wave = await env.wave(programme)
    mentee = await env.mentee(wave, themes_wanted=[{"theme": "data_ai", "level": 2}])
    # Above the mentee's level scores best, then equal, then below.
    ranked = [
        await env.mentor(wave, capacity=capacity, themes_offered=[{"theme": "data_ai", "level": 3 - i}])
        for i in range(mentors)
    ]
    await env.synced()
    return wave, mentee, ranked


async def seats(env: MatchingEnv, mentor: str) -> int:
    page = await env.ok("GET", f"/v1/pairs?participant_id={mentor}&limit=200")
    return sum(p["status"] in ("proposed", "formed") for p in page["items"])


async def test_suggestions_are_ranked_and_explained_for_the_mentee_itself(env: MatchingEnv) -> None:
    _, mentee, ranked = await wave_with(env, 3)
    mine = env.as_participant(mentee)
    body = await env.ok("GET", f"/v1/mentees/{mentee}/suggestions?k=2", headers=mine)
    assert [s["mentor_id"] for s in body["suggestions"]] == ranked[:2]
    scores = [s["score"] for s in body["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    first = body["suggestions"][0]
    assert abs(sum(c["points"] for c in first["breakdown"]) - first["score"]) < 1e-6
    themes = next(c for c in first["breakdown"] if c["criterion"] == "themes")
    assert "1/1 wanted themes offered" in themes["detail"]
    assert first["remaining_capacity"] == 1

    # Another participant, the mentor, ops: nothing to see here.
    problem(await env.client.get(f"/v1/mentees/{mentee}/suggestions", headers=env.as_participant(ranked[0])), 404)
    problem(await env.client.get(f"/v1/mentees/{mentee}/suggestions", headers=env.auth("ops")), 403)
    de_committee = env.auth("regional_committee", countries=["DE"])
    problem(await env.client.get(f"/v1/mentees/{mentee}/suggestions", headers=de_committee), 404)


async def test_a_decline_proposes_the_next_choice(env: MatchingEnv) -> None:
    _, mentee, (first, second, third) = await wave_with(env, 3)
    mine = env.as_participant(mentee)
    proposed = await env.ok("POST", f"/v1/mentees/{mentee}/choices", {"mentor_ids": [first, second, third]}, mine)
    assert proposed["origin"] == "choice" and proposed["people"]["mentor_id"] == first
    assert proposed["next_choices"] == [second, third]

    path = f"/v1/pairs/{proposed['pair_id']}:decline"
    declined = await env.ok("POST", path, {"note": "No time"}, env.as_participant(first))
    assert declined["status"] == "declined" and declined["ended"]["side"] == "mentor"
    assert "note" not in declined  # free text stays in the event
    nxt = (await env.ok("GET", f"/v1/pairs?participant_id={mentee}&status=proposed"))["items"]
    assert [(p["people"]["mentor_id"], p["follows_pair_id"], p["next_choices"]) for p in nxt] == [
        (second, proposed["pair_id"], [third])
    ]
    # The declined mentor is never offered to this mentee again.
    suggested = await env.ok("GET", f"/v1/mentees/{mentee}/suggestions", headers=mine)
    assert first not in [s["mentor_id"] for s in suggested["suggestions"]]

    await env.ok("POST", f"/v1/pairs/{nxt[0]['pair_id']}:decline", None, env.auth("hr_admin"))
    last = (await env.ok("GET", f"/v1/pairs?participant_id={mentee}&status=proposed"))["items"]
    assert [p["people"]["mentor_id"] for p in last] == [third] and last[0]["next_choices"] == []
    await env.ok("POST", f"/v1/pairs/{last[0]['pair_id']}:decline", None, env.as_participant(third))
    assert (await env.ok("GET", f"/v1/pairs?participant_id={mentee}&status=proposed"))["items"] == []


async def test_a_full_mentor_is_never_offered_nor_proposed(env: MatchingEnv) -> None:
    wave, mentee, (busy, free) = await wave_with(env, 2)
    other = await env.mentee(wave)
    await env.synced()
    await env.ok("POST", f"/v1/mentees/{other}/choices", {"mentor_ids": [busy]})
    assert await seats(env, busy) == 1

    suggested = await env.ok("GET", f"/v1/mentees/{mentee}/suggestions", headers=env.as_participant(mentee))
    assert [s["mentor_id"] for s in suggested["suggestions"]] == [free]
    pair = await env.ok("POST", f"/v1/mentees/{mentee}/choices", {"mentor_ids": [busy, free]})
    assert pair["people"]["mentor_id"] == free and pair["next_choices"] == []
    assert await seats(env, busy) == 1


async def test_concurrent_choices_never_exceed_a_mentors_capacity(env: MatchingEnv) -> None:
    wave, first, (mentor,) = await wave_with(env, 1)
    others = [await env.mentee(wave) for _ in range(3)]
    await env.synced()
    responses = await asyncio.gather(
        *(
            env.client.post(f"/v1/mentees/{m}/choices", json={"mentor_ids": [mentor]}, headers=env.auth("hr_admin"))
            for m in [first, *others]
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await seats(env, mentor) == 1


async def test_choice_input_is_checked(env: MatchingEnv) -> None:
    wave, mentee, (mentor,) = await wave_with(env, 1)
    senior = await env.mentor(wave, job_level=15)
    await env.synced()
    hr = env.auth("hr_admin")
    before = await env.count_events()
    cases = [
        ({"mentor_ids": []}, "body.mentor_ids"),
        ({"mentor_ids": [mentor, mentor]}, "body.mentor_ids"),
        ({"mentor_ids": [mentor], "extra": 1}, "body.extra"),
        ({"mentor_ids": [wave]}, "body.mentor_ids.0"),  # not a mentor of the wave
        ({"mentor_ids": [mentor, senior]}, "body.mentor_ids.1"),  # breaks the seniority rule
    ]
    for body, field in cases:
        response = await env.client.post(f"/v1/mentees/{mentee}/choices", json=body, headers=hr)
        assert [e["field"] for e in problem(response, 422)["errors"]] == [field]
    # A mentor cannot choose for a mentee; a mentee cannot choose twice.
    problem(
        await env.client.post(
            f"/v1/mentees/{mentee}/choices", json={"mentor_ids": [mentor]}, headers=env.as_participant(mentor)
        ),
        404,
    )
    assert await env.count_events() == before
    await env.ok("POST", f"/v1/mentees/{mentee}/choices", {"mentor_ids": [mentor]}, env.as_participant(mentee))
    again = await env.client.post(f"/v1/mentees/{mentee}/choices", json={"mentor_ids": [mentor]}, headers=hr)
    problem(again, 409)


async def test_choices_replay_with_the_same_idempotency_key(env: MatchingEnv) -> None:
    _, mentee, (mentor,) = await wave_with(env, 1)
    headers = {**env.auth("hr_admin"), "Idempotency-Key": "choice-1"}
    first = await env.client.post(f"/v1/mentees/{mentee}/choices", json={"mentor_ids": [mentor]}, headers=headers)
    second = await env.client.post(f"/v1/mentees/{mentee}/choices", json={"mentor_ids": [mentor]}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true" and second.json() == first.json()
    assert await seats(env, mentor) == 1
