"""The mentor's side of the choice flow and lifted exclusions, on the real
stack: a mentor's suggested mentees scored as the mentees' suggestions score
the pair, its interest recorded once and shown to HR, the committee and the
mentee; an exclusion lifted with a reason (and excluded again), each
command isolated by country and refused bad input with nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.matching import MatchingEnv, matching_env
from tests.support.problems import fields, problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("matching-mentor-side"), kafka_bootstrap):
        yield environment


async def test_a_mentor_sees_its_best_mentees_and_its_interest_reaches_hr(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    mentor = await env.mentor(wave, themes_offered=[{"theme": "data_ai", "level": 3}])
    # The mentor knows data_ai above the first mentee's level, equal to the second's, not the third's theme.
    mentees = [
        await env.mentee(wave, themes_wanted=[{"theme": theme, "level": level}])
        for theme, level in (("data_ai", 2), ("data_ai", 3), ("cybersecurity", 2))
    ]
    other_wave_mentee = await env.mentee(await env.wave(programme, "DE"))
    await env.synced()
    me = env.as_participant(mentor)

    view = await env.ok("GET", f"/v1/mentors/{mentor}/suggested-mentees", headers=me)
    assert [m["mentee_id"] for m in view["mentees"]] == mentees
    assert view["remaining_capacity"] == 2 and not any(m["interest_expressed"] for m in view["mentees"])
    # One definition of the pair's score: the mentee's suggestions say the same.
    for item in view["mentees"]:
        theirs = (await env.ok("GET", f"/v1/mentees/{item['mentee_id']}/suggestions"))["suggestions"]
        assert next(s["score"] for s in theirs if s["mentor_id"] == mentor) == item["score"]

    before = await env.count_events()
    bad = problem(await env.client.post(f"/v1/mentors/{mentor}/interests", json={"mentee_id": other_wave_mentee},
                                        headers=me), 422)
    assert fields(bad) == ["body.mentee_id"]
    problem(await env.client.post(f"/v1/mentors/{mentor}/interests", json={"mentee": mentees[1]}, headers=me), 422)
    problem(await env.client.post(f"/v1/mentors/{mentor}/interests", json={"mentee_id": mentees[1]},
                                  headers=env.auth("hr_admin")), 403)  # only the mentor speaks for itself
    problem(await env.client.post(f"/v1/mentors/{mentor}/interests", json={"mentee_id": mentees[1]},
                                  headers=env.as_participant(mentees[0])), 404)
    assert await env.count_events() == before

    interest = await env.client.post(f"/v1/mentors/{mentor}/interests", json={"mentee_id": mentees[1]}, headers=me)
    assert interest.status_code == 201, interest.text
    assert interest.json()["mentee_id"] == mentees[1] and interest.json()["country"] == "FR"
    assert await env.count_events() == before + 1
    problem(await env.client.post(f"/v1/mentors/{mentor}/interests", json={"mentee_id": mentees[1]}, headers=me), 409)

    for headers in (env.auth("hr_admin"), env.auth("regional_committee", countries=["FR"]),
                    env.as_participant(mentees[1])):
        shown = await env.ok("GET", f"/v1/mentees/{mentees[1]}/suggestions", headers=headers)
        assert [s["mentor_interested"] for s in shown["suggestions"] if s["mentor_id"] == mentor] == [True]
    other = await env.ok("GET", f"/v1/mentees/{mentees[0]}/suggestions")
    assert [s["mentor_interested"] for s in other["suggestions"] if s["mentor_id"] == mentor] == [False]
    view = await env.ok("GET", f"/v1/mentors/{mentor}/suggested-mentees", headers=me)
    assert [m["interest_expressed"] for m in view["mentees"]] == [False, True, False]

    # Who else may look: HR and the mentor's committee; not another country's, not another participant.
    assert (await env.client.get(f"/v1/mentors/{mentor}/suggested-mentees",
                                 headers=env.auth("regional_committee", countries=["FR"]))).status_code == 200
    problem(await env.client.get(f"/v1/mentors/{mentor}/suggested-mentees",
                                 headers=env.auth("regional_committee", countries=["DE"])), 404)
    problem(await env.client.get(f"/v1/mentors/{mentor}/suggested-mentees", headers=env.as_participant(mentees[0])),
            404)
    problem(await env.client.get(f"/v1/mentors/{mentees[0]}/suggested-mentees", headers=env.auth("hr_admin")),
            404)  # a mentee is no mentor


async def test_an_exclusion_is_lifted_with_a_reason_and_the_pair_may_be_proposed_again(env: MatchingEnv) -> None:
    wave = await env.wave(await env.programme(), "BE")
    mentee, mentor = await env.mentee(wave), await env.mentor(wave)
    await env.synced()
    exclusion = await env.ok("POST", "/v1/exclusions", {"mentee_id": mentee, "mentor_id": mentor, "note": "Same team."})
    path = f"/v1/exclusions/{exclusion['exclusion_id']}:lift"
    assert (await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]}))["pairs"] == []

    before = await env.count_events()
    assert fields(problem(await env.client.post(path, json={}, headers=env.auth("hr_admin")), 422)) == ["body.reason"]
    problem(await env.client.post(path, json={"reason": ""}, headers=env.auth("hr_admin")), 422)
    problem(await env.client.post(path, json={"reason": "Moved."},
                                  headers=env.auth("regional_committee", countries=["FR"])), 404)
    problem(await env.client.post(path, json={"reason": "Moved."}, headers=env.auth("hr_admin", org="org-b")), 404)
    problem(await env.client.post(path, json={"reason": "Moved."}, headers=env.auth("ops")), 403)
    problem(await env.client.post("/v1/exclusions/00000000-0000-4000-8000-000000000000:lift",
                                  json={"reason": "Moved."}, headers=env.auth("hr_admin")), 404)
    assert await env.count_events() == before

    committee = env.auth("regional_committee", countries=["BE"])
    lifted = await env.ok("POST", path, {"reason": "The mentor moved to another department."}, headers=committee)
    assert lifted == {**{k: exclusion[k] for k in ("exclusion_id", "programme_id", "mentee_id", "mentor_id",
                                                      "country")}, "lifted": True}
    assert await env.count_events() == before + 1
    # The reason is personal data: in the (sealable) event only, never in a read table.
    lifted_row = await env.pool.fetchrow(f"SELECT lifted, doc::text FROM {env.schema}.exclusions WHERE exclusion_id = $1",
                                         exclusion["exclusion_id"])
    assert lifted_row["lifted"] and "moved to another department" not in lifted_row["doc"]
    problem(await env.client.post(path, json={"reason": "Again."}, headers=committee), 409)
    [pair] = (await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]}))["pairs"]
    assert (pair["mentee_id"], pair["mentor_id"]) == (mentee, mentor)

    # Excluded again: in force once more, and twice is still a 409.
    again = await env.client.post("/v1/exclusions", json={"mentee_id": mentee, "mentor_id": mentor},
                                  headers=env.auth("hr_admin"))
    assert again.status_code == 201 and again.json()["exclusion_id"] == exclusion["exclusion_id"]
    problem(await env.client.post("/v1/exclusions", json={"mentee_id": mentee, "mentor_id": mentor},
                                  headers=env.auth("hr_admin")), 409)
    assert (await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]}))["pairs"] == []
