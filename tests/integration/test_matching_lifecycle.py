"""A pair's life on the real stack: accept per side, HR confirm, formed,
dissolve and re-pair without the same partner, complete, 409s on illegal
or concurrent changes, withdrawals from enrollment ending pairs, what a
participant sees, the read tables rebuilt from the log, and the events on
the broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from libs.events import topic_for_context
from libs.messaging.relay import OutboxRelay
from services.matching import SERVICE
from services.matching.bootstrap import Matching
from tests.support.kafka import read_topic
from tests.support.matching import MatchingEnv, matching_env
from tests.support.pagination import listed, walk_across_rebuild
from tests.support.problems import problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("matching-life"), kafka_bootstrap):
        yield environment


async def proposed_pair(env: MatchingEnv, mentors: int = 1) -> tuple[str, dict[str, Any], list[str]]:
    """A wave, a run-proposed pair in it and the wave's mentors."""
    programme = await env.programme()
    wave = await env.wave(programme)
    await env.mentee(wave, themes_wanted=[{"theme": "data_ai", "level": 2}])
    # Above the mentee's level scores best, then equal: the first mentor is the best.
    ids = [await env.mentor(wave, themes_offered=[{"theme": "data_ai", "level": 3 - i}]) for i in range(mentors)]
    await env.synced()
    run = await env.run(wave)
    return wave, await env.pair(run["pairs"][0]["pair_id"]), ids


async def post(env: MatchingEnv, pair: dict[str, Any], action: str, headers: dict[str, str], body: Any = None):
    return await env.client.post(f"/v1/pairs/{pair['pair_id']}:{action}", json=body, headers=headers)


async def test_formed_when_both_people_accepted(env: MatchingEnv) -> None:
    _, pair, _ = await proposed_pair(env)
    mentee, mentor = pair["people"]["mentee_id"], pair["people"]["mentor_id"]
    first = await post(env, pair, "accept", env.as_participant(mentee))
    assert first.status_code == 200 and first.json()["status"] == "proposed"
    assert first.json()["accepted_by"] == ["mentee"] and first.headers["ETag"] == '"2"'
    problem(await post(env, pair, "accept", env.as_participant(mentee)), 409)  # once per side
    problem(await post(env, pair, "accept", env.auth("hr_admin")), 403)  # HR confirms instead
    formed = (await post(env, pair, "accept", env.as_participant(mentor))).json()
    assert formed["status"] == "formed" and formed["confirmed_by"] == "mentor" and formed["formed_at"]
    assert formed["updated_by"]["subject"] == mentor  # who made the change


async def test_hr_confirms_and_completes(env: MatchingEnv) -> None:
    _, pair, _ = await proposed_pair(env)
    hr = env.auth("regional_committee", countries=["FR"])
    problem(await post(env, pair, "complete", hr), 409)  # not formed yet
    problem(await post(env, pair, "dissolve", hr, {"reason": "no_chemistry"}), 409)
    confirmed = (await post(env, pair, "confirm", hr)).json()
    assert confirmed["status"] == "formed" and confirmed["confirmed_by"] == "hr"
    problem(await post(env, pair, "decline", hr), 409)  # formed: no more a proposal
    problem(await post(env, pair, "complete", env.as_participant(pair["people"]["mentee_id"])), 403)
    done = (await post(env, pair, "complete", hr)).json()
    assert done["status"] == "completed" and done["ended"]["by"]["subject"] == "hr-1"
    problem(await post(env, pair, "complete", hr), 409)


async def test_dissolved_people_return_to_the_pool_and_never_meet_again(env: MatchingEnv) -> None:
    wave, pair, (first, second) = await proposed_pair(env, mentors=2)
    mentee = pair["people"]["mentee_id"]
    assert pair["people"]["mentor_id"] == first
    await post(env, pair, "confirm", env.auth("hr_admin"))
    bad = await post(env, pair, "dissolve", env.auth("hr_admin"), {"reason": "bored"})
    assert [e["field"] for e in problem(bad, 422)["errors"]] == ["body.reason"]
    dissolved = await post(env, pair, "dissolve", env.as_participant(mentee), {"reason": "no_chemistry", "note": "x"})
    body = dissolved.json()
    assert body["status"] == "dissolved"
    assert (body["ended"]["side"], body["ended"]["reason"]) == ("mentee", "no_chemistry")

    rerun = await env.run(wave)
    assert [(p["mentee_id"], p["mentor_id"]) for p in rerun["pairs"]] == [(mentee, second)]
    # With the other mentor taken, the earlier partner still is not proposed.
    await env.ok("POST", f"/v1/pairs/{rerun['pairs'][0]['pair_id']}:confirm")
    await env.ok("POST", f"/v1/pairs/{rerun['pairs'][0]['pair_id']}:dissolve", {"reason": "availability"})
    last = await env.run(wave)
    assert last["pairs"] == []
    assert [(u["participant_id"], u["code"]) for u in last["unmatched"] if u["role"] == "mentee"] == [
        (mentee, "no_feasible_partner")
    ]
    assert "earlier_partner: 2" in last["unmatched"][0]["detail"]


async def test_concurrent_changes_of_one_pair_one_wins(env: MatchingEnv) -> None:
    _, pair, _ = await proposed_pair(env)
    hr = env.auth("hr_admin")
    responses = await asyncio.gather(post(env, pair, "confirm", hr), post(env, pair, "decline", hr))
    assert sorted(r.status_code for r in responses) == [200, 409]
    final = await env.pair(pair["pair_id"])
    assert final["status"] in ("formed", "declined") and final["version"] in (2, 3)


async def test_withdrawals_end_the_persons_pairs(env: MatchingEnv) -> None:
    wave, formed, _ = await proposed_pair(env)
    await post(env, formed, "confirm", env.auth("hr_admin"))
    mentee = await env.mentee(wave)
    first, second = await env.mentor(wave), await env.mentor(wave)
    await env.synced()
    chosen = await env.ok("POST", f"/v1/mentees/{mentee}/choices", {"mentor_ids": [first, second]})

    await env.withdraw(formed["people"]["mentor_id"])
    await env.withdraw(first)
    await env.synced()
    after = await env.pair(formed["pair_id"])
    assert after["status"] == "dissolved" and after["ended"]["reason"] == "left_programme"
    assert after["ended"]["side"] == "mentor" and after["ended"]["by"]["subject"] == "user-1"
    assert (await env.pair(chosen["pair_id"]))["status"] == "declined"
    nxt = (await env.ok("GET", f"/v1/pairs?participant_id={mentee}&status=proposed"))["items"]
    assert [p["people"]["mentor_id"] for p in nxt] == [second]  # the mentee's next choice


async def test_an_erased_person_leaves_the_pool_and_its_pairs(env: MatchingEnv) -> None:
    wave, pair, (mentor,) = await proposed_pair(env)
    await post(env, pair, "confirm", env.auth("hr_admin"))
    await env.enrollment.post(f"/v1/participants/{mentor}:erase", {})
    await env.synced()
    row = await env.pool.fetchrow(
        f"SELECT matchable, employee_ref, manager_ref FROM {env.schema}.candidates WHERE participant_id = $1",
        uuid.UUID(mentor),
    )
    assert dict(row) == {"matchable": False, "employee_ref": "", "manager_ref": None}
    after = await env.pair(pair["pair_id"])
    assert after["status"] == "dissolved" and after["ended"]["reason"] == "left_programme"
    assert (await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]}))["inputs"]["mentor_ids"] == []


async def test_participants_see_only_their_pairs(env: MatchingEnv) -> None:
    _, pair, _ = await proposed_pair(env)
    _, other, _ = await proposed_pair(env)
    mentee = env.as_participant(pair["people"]["mentee_id"])
    listed = await env.ok("GET", "/v1/pairs", headers=mentee)
    assert [p["pair_id"] for p in listed["items"]] == [pair["pair_id"]]
    problem(await env.client.get(f"/v1/pairs/{other['pair_id']}", headers=mentee), 404)
    problem(await post(env, other, "accept", mentee), 404)
    problem(await post(env, other, "decline", mentee), 404)
    assert (await env.pair(other["pair_id"]))["status"] == "proposed"


async def test_read_tables_rebuild_from_the_log(env: MatchingEnv) -> None:
    _, pair, _ = await proposed_pair(env)
    await post(env, pair, "confirm", env.auth("hr_admin"))
    before = await env.pool.fetch(f"SELECT pair_id, status, doc::text FROM {env.schema}.pairs ORDER BY pair_id")
    runs = await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.runs")
    applied = await Matching(env.pool, env.store).rebuild_read_tables()
    assert applied == await env.count_events()
    after = await env.pool.fetch(f"SELECT pair_id, status, doc::text FROM {env.schema}.pairs ORDER BY pair_id")
    assert [(r[0], r[1], orjson.loads(r[2])) for r in after] == [(r[0], r[1], orjson.loads(r[2])) for r in before]
    assert await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.runs") == runs
    assert SERVICE.rebuild_read_tables is not None and SERVICE.projections


async def test_a_cursor_held_across_a_rebuild_neither_skips_nor_repeats(env: MatchingEnv) -> None:
    """Lists page by each row's own id, not by row_id: `binome replay
    matching read-tables` renumbers every row."""
    programme = await env.programme()
    wave = await env.wave(programme)
    for i in range(3):
        await env.mentee(wave, themes_wanted=[{"theme": "data_ai", "level": 2}])
        await env.mentor(wave, themes_offered=[{"theme": "data_ai", "level": 3}])
    await env.synced()
    await env.run(wave)

    async def rebuild_tables() -> None:
        await Matching(env.pool, env.store).rebuild_read_tables()

    query = {"wave_id": wave}
    everything = await listed(env.client, "/v1/pairs", query, env.auth("hr_admin"))
    assert len(everything) == 3
    walked = await walk_across_rebuild(env.client, "/v1/pairs", query, env.auth("hr_admin"), rebuild_tables)
    assert walked == everything


async def test_pair_events_reach_the_broker_for_sessions_and_evaluation(env: MatchingEnv, kafka_bootstrap: str) -> None:
    _, pair, _ = await proposed_pair(env)
    await post(env, pair, "confirm", env.auth("hr_admin"))
    stop = asyncio.Event()
    relay = OutboxRelay(env.pool, env.schema, kafka_bootstrap, service="matching", poll_interval_s=0.05)
    task = asyncio.create_task(relay.run(stop))
    try:
        topic = topic_for_context("matching", env.enrollment.topic_prefix)
        total = await env.count_events()
        records = await read_topic(kafka_bootstrap, topic, until=total)
    finally:
        stop.set()
        await task
    mine = [orjson.loads(r.value) for r in records if r.key.decode() == pair["pair_id"]]
    assert [e["type"] for e in mine] == [
        "binome.matching.PairProposed.v1",
        "binome.matching.PairAccepted.v1",
        "binome.matching.PairFormed.v1",
    ]
    assert [e["streamversion"] for e in mine] == [1, 2, 3] and mine[-1]["country"] == "FR"


async def test_the_end_of_a_wave_completes_its_pairs_and_declines_its_proposals(env: MatchingEnv) -> None:
    wave, formed, _ = await proposed_pair(env)
    await post(env, formed, "confirm", env.auth("hr_admin"))
    await env.mentee(wave)
    await env.mentor(wave)
    await env.synced()
    [proposal] = (await env.run(wave))["pairs"]
    committee = env.auth("regional_committee", countries=["FR"], sub="committee-fr")
    await env.enrollment.post(f"/v1/waves/{wave}:close-enrolment", {}, committee)
    await env.enrollment.post(f"/v1/waves/{wave}:end", {}, committee)
    await env.synced()
    completed = await env.pair(formed["pair_id"])
    assert completed["status"] == "completed" and completed["ended"]["by"]["subject"] == "committee-fr"
    declined = await env.pair(proposal["pair_id"])
    assert declined["status"] == "declined"
    # No next choice is proposed in a wave that is over.
    assert (await env.ok("GET", f"/v1/pairs?status=proposed&wave_id={wave}"))["items"] == []


async def test_a_transfer_ends_the_persons_pairs_and_moves_it_in_the_pool(env: MatchingEnv) -> None:
    wave, formed, _ = await proposed_pair(env)
    await post(env, formed, "confirm", env.auth("hr_admin"))
    programme = (await env.enrollment.client.get(f"/v1/waves/{wave}", headers=env.auth("hr_admin"))).json()
    other = await env.wave(programme["programme_id"], "DE")
    mentee = formed["people"]["mentee_id"]
    approver = env.auth("regional_committee", countries=["FR", "DE"], sub="committee-eu")
    await env.enrollment.post(f"/v1/participants/{mentee}:transfer", {"wave_id": other}, approver)
    await env.synced()
    after = await env.pair(formed["pair_id"])
    assert after["status"] == "dissolved" and after["ended"]["reason"] == "transferred"
    assert after["ended"]["side"] == "mentee" and after["ended"]["by"]["subject"] == "committee-eu"
    row = await env.pool.fetchrow(f"SELECT wave_id, country FROM {env.schema}.candidates WHERE participant_id = $1",
                                  uuid.UUID(mentee))
    assert (str(row["wave_id"]), row["country"]) == (other, "DE")
    # People choose the reason of a dissolution, never "transferred": matching sets it.
    bad = await post(env, formed, "dissolve", env.auth("hr_admin"), {"reason": "transferred"})
    assert [e["field"] for e in problem(bad, 422)["errors"]] == ["body.reason"]
