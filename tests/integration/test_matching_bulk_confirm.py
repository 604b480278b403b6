"""Confirming a run's proposals in one call on the real stack: every open
proposal (or a chosen set), one PairFormed per pair, all or nothing, the
Idempotency-Key replay, and isolation between committees."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.matching import MatchingEnv, matching_env
from tests.support.problems import fields, problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("matching-bulk"), kafka_bootstrap):
        yield environment


async def run_of(env: MatchingEnv, pairs: int, country: str = "FR") -> dict:
    """A run of one wave proposing ``pairs`` pairs."""
    wave = await env.wave(await env.programme(), country)
    for _ in range(pairs):
        await env.mentee(wave)
        await env.mentor(wave, capacity=1)
    await env.synced()
    run = await env.run(wave)
    assert len(run["pairs"]) == pairs
    return run


async def formed_events(env: MatchingEnv, pair_ids: list[str]) -> int:
    return await env.pool.fetchval(
        f"SELECT count(*) FROM {env.schema}.events WHERE type LIKE '%.PairFormed.%' AND stream_id = ANY($1::text[])",
        pair_ids,
    )


async def test_every_open_proposal_of_a_run_is_confirmed_in_one_call(env: MatchingEnv) -> None:
    run = await run_of(env, 3)
    pair_ids = [p["pair_id"] for p in run["pairs"]]
    await env.ok("POST", f"/v1/pairs/{pair_ids[0]}:decline", {"note": "Not now."})
    headers = {**env.auth("hr_admin"), "Idempotency-Key": f"confirm-{run['run_id']}"}
    first = await env.client.post(f"/v1/runs/{run['run_id']}:confirm", headers=headers)
    assert first.status_code == 200, first.text
    assert sorted(first.json()["confirmed"]) == sorted(pair_ids[1:])
    assert first.json()["skipped"] == [{"pair_id": pair_ids[0], "status": "declined"}]
    for pair_id in pair_ids[1:]:
        assert (await env.pair(pair_id))["status"] == "formed"
    assert await formed_events(env, pair_ids) == 2  # one event per fact

    before = await env.count_events()
    again = await env.client.post(f"/v1/runs/{run['run_id']}:confirm", headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert await env.count_events() == before
    # Without the key, a second call finds nothing open: nothing more written.
    second = await env.ok("POST", f"/v1/runs/{run['run_id']}:confirm")
    assert second["confirmed"] == [] and await env.count_events() == before


async def test_a_chosen_set_is_all_or_nothing_and_names_the_bad_pair(env: MatchingEnv) -> None:
    run = await run_of(env, 3)
    pair_ids = [p["pair_id"] for p in run["pairs"]]
    await env.ok("POST", f"/v1/pairs/{pair_ids[2]}:decline")
    path = f"/v1/runs/{run['run_id']}:confirm"
    other = (await run_of(env, 1))["pairs"][0]["pair_id"]  # a pair of another run
    before = await env.count_events()
    declined = problem(await env.client.post(path, json={"pair_ids": pair_ids[:1] + pair_ids[2:]},
                                             headers=env.auth("hr_admin")), 422)
    assert fields(declined) == ["body.pair_ids.1"] and "declined" in declined["errors"][0]["message"]
    foreign = problem(await env.client.post(path, json={"pair_ids": [pair_ids[0], other]},
                                            headers=env.auth("hr_admin")), 422)
    assert fields(foreign) == ["body.pair_ids.1"]
    twice = problem(await env.client.post(path, json={"pair_ids": [pair_ids[0], pair_ids[0]]},
                                          headers=env.auth("hr_admin")), 422)
    assert fields(twice) == ["body.pair_ids"]
    assert await env.count_events() == before  # nothing partly written
    assert (await env.pair(pair_ids[0]))["status"] == "proposed"

    done = await env.ok("POST", path, {"pair_ids": pair_ids[:2]})
    assert done["confirmed"] == pair_ids[:2] and done["skipped"] == []


async def test_a_committee_confirms_only_runs_of_its_countries(env: MatchingEnv) -> None:
    run = await run_of(env, 2, country="DE")
    path = f"/v1/runs/{run['run_id']}:confirm"
    before = await env.count_events()
    problem(await env.client.post(path, headers=env.auth("regional_committee", countries=["FR"])), 404)
    problem(await env.client.post(path, headers=env.auth("hr_admin", org="org-b")), 404)
    problem(await env.client.post(path, headers=env.auth("ops")), 403)
    problem(await env.client.post(path, headers=env.as_participant(run["pairs"][0]["mentee_id"])), 403)
    assert await env.count_events() == before
    done = await env.ok("POST", path, headers=env.auth("regional_committee", countries=["DE"]))
    assert len(done["confirmed"]) == 2
