"""A wave's waitlist through matching's API (issue 19): the mentees a run left
unmatched, with reason and position; the best next pairs offered when a seat
frees, scored as suggestions are; proposing one takes the mentee off; the
committee of another country sees none of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.matching.bootstrap import Matching
from tests.support.matching import MatchingEnv, matching_env
from tests.support.problems import problem

pytestmark = pytest.mark.integration

WANTS = {"themes_wanted": [{"theme": "data_ai", "level": 2}]}


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("waitlist"), kafka_bootstrap):
        yield environment


async def test_unmatched_mentees_wait_and_are_offered_freed_seats(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    mentees = [await env.mentee(wave, **WANTS) for _ in range(3)]
    mentor = await env.mentor(wave, themes_offered=[{"theme": "data_ai", "level": 3}], capacity=1)
    await env.synced()
    run = await env.run(wave)
    [proposal] = run["pairs"]
    unmatched = {u["participant_id"]: u["code"] for u in run["unmatched"] if u["role"] == "mentee"}
    assert set(unmatched) == set(mentees) - {proposal["mentee_id"]}
    assert set(unmatched.values()) == {"capacity_exhausted"}

    listed = await env.ok("GET", f"/v1/waves/{wave}/waitlist")
    assert [e["position"] for e in listed["items"]] == [1, 2]
    assert {e["mentee_id"] for e in listed["items"]} == set(unmatched)
    assert {(e["reason"], e["run_id"]) for e in listed["items"]} == {("capacity_exhausted", run["run_id"])}
    assert (await env.ok("GET", f"/v1/waves/{wave}/waitlist/offers"))["offers"] == []  # no seat is free

    # A second run keeps the places in the line (its reason and run are the latest).
    again = await env.run(wave)
    assert again["pairs"] == []
    relisted = (await env.ok("GET", f"/v1/waves/{wave}/waitlist"))["items"]
    assert [(e["position"], e["mentee_id"], e["since"]) for e in relisted] == [
        (e["position"], e["mentee_id"], e["since"]) for e in listed["items"]
    ]
    assert {e["run_id"] for e in relisted} == {again["run_id"]}

    # The seat frees: the first in line is offered it, scored as its suggestions are.
    await env.ok("POST", f"/v1/pairs/{proposal['pair_id']}:decline")
    offers = (await env.ok("GET", f"/v1/waves/{wave}/waitlist/offers"))["offers"]
    first = listed["items"][0]["mentee_id"]
    assert [(o["position"], o["mentee_id"], o["mentor_id"]) for o in offers] == [(1, first, mentor)]
    suggested = await env.ok("GET", f"/v1/mentees/{first}/suggestions")
    assert offers[0]["score"] == suggested["suggestions"][0]["score"]

    # Proposing the offer takes the mentee off the list; the second keeps waiting, now first.
    await env.ok("POST", f"/v1/mentees/{first}/choices", {"mentor_ids": [mentor]})
    rest = (await env.ok("GET", f"/v1/waves/{wave}/waitlist"))["items"]
    assert [(e["position"], e["mentee_id"]) for e in rest] == [(1, listed["items"][1]["mentee_id"])]

    # A new mentor frees capacity again: the next in line is offered it.
    newcomer = await env.mentor(wave, themes_offered=[{"theme": "data_ai", "level": 3}], capacity=1)
    await env.synced()
    offers = (await env.ok("GET", f"/v1/waves/{wave}/waitlist/offers"))["offers"]
    assert [(o["mentee_id"], o["mentor_id"]) for o in offers] == [(rest[0]["mentee_id"], newcomer)]

    # The read tables (the waitlist with them) rebuild from the log alone.
    before = (await env.ok("GET", f"/v1/waves/{wave}/waitlist"))["items"]
    await Matching(env.pool, env.store).rebuild_read_tables()
    assert (await env.ok("GET", f"/v1/waves/{wave}/waitlist"))["items"] == before


async def test_the_waitlist_is_its_countrys_committees(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    await env.mentee(wave, **WANTS)
    await env.synced()
    await env.run(wave)
    france = env.auth("regional_committee", countries=["FR"])
    germany = env.auth("regional_committee", countries=["DE"])
    assert len((await env.ok("GET", f"/v1/waves/{wave}/waitlist", headers=france))["items"]) == 1
    for path in (f"/v1/waves/{wave}/waitlist", f"/v1/waves/{wave}/waitlist/offers"):
        problem(await env.client.get(path, headers=germany), 404)
        problem(await env.client.get(path, headers=env.auth("ops")), 403)
        problem(await env.client.get(path, headers=env.auth("hr_admin", org="org-other")), 404)
    problem(await env.client.get("/v1/waves/not-a-wave/waitlist", headers=france), 422)


async def test_the_waitlist_carries_over_into_the_next_wave_keeping_its_place(env: MatchingEnv) -> None:
    programme = await env.programme()
    first_wave, next_wave = await env.wave(programme), await env.wave(programme)
    for _ in range(2):
        await env.mentee(first_wave, **WANTS)
    await env.mentor(first_wave, themes_offered=[{"theme": "data_ai", "level": 3}], capacity=1)
    newcomer = await env.mentee(next_wave, **WANTS)
    await env.synced()
    await env.run(first_wave)
    [waiting] = (await env.ok("GET", f"/v1/waves/{first_wave}/waitlist"))["items"]
    await env.run(next_wave)
    assert [e["mentee_id"] for e in (await env.ok("GET", f"/v1/waves/{next_wave}/waitlist"))["items"]] == [newcomer]

    committee = env.auth("regional_committee", countries=["FR"], sub="committee-fr")
    carry = f"/v1/waves/{first_wave}/participants:transfer"
    before = await env.enrollment.count_events()
    bad = await env.enrollment.client.post(
        carry, json={"to_wave_id": next_wave, "participant_ids": [waiting["mentee_id"], newcomer]}, headers=committee
    )
    assert [e["field"] for e in problem(bad, 422)["errors"]] == ["body.participant_ids.1"]  # not of this wave
    assert await env.enrollment.count_events() == before  # all or none
    moved = await env.enrollment.post(
        carry, {"to_wave_id": next_wave, "participant_ids": [waiting["mentee_id"]]}, committee
    )
    assert moved["transferred"] == [waiting["mentee_id"]]
    await env.synced()
    assert (await env.ok("GET", f"/v1/waves/{first_wave}/waitlist"))["items"] == []
    line = (await env.ok("GET", f"/v1/waves/{next_wave}/waitlist"))["items"]
    assert [(e["position"], e["mentee_id"]) for e in line] == [(1, waiting["mentee_id"]), (2, newcomer)]
    assert line[0]["since"] == waiting["since"]  # it waited longer: first in the new wave's line
