"""One definition of a mentor's availability for a run and for the
suggestions: a mentor's monthly sessions are shared among all its seats
(its whole capacity), whether some are held already or not. Reported: a
mentor with capacity 2 and 2 sessions a month, holding one mentee, was
worth 1 session/month per mentee in the suggestions and 2 in a run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.matching import MatchingEnv, matching_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("matching-availability"), kafka_bootstrap):
        yield environment


def availability(breakdown: list[dict]) -> dict:
    return next(c for c in breakdown if c["criterion"] == "availability")


async def test_a_run_and_the_suggestions_score_a_half_booked_mentor_alike(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    mentor = await env.mentor(wave, capacity=2, sessions_per_month=2)
    first = await env.mentee(wave, sessions_per_month=2)
    second = await env.mentee(wave, sessions_per_month=2)
    await env.synced()
    await env.ok("POST", f"/v1/mentees/{first}/choices", {"mentor_ids": [mentor]})  # one seat held

    suggested = (await env.ok("GET", f"/v1/mentees/{second}/suggestions"))["suggestions"]
    assert [s["mentor_id"] for s in suggested] == [mentor]
    assert suggested[0]["remaining_capacity"] == 1
    preview = await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]})
    [run_pair] = preview["pairs"]
    assert (run_pair["mentee_id"], run_pair["mentor_id"]) == (second, mentor)
    assert abs(run_pair["score"] - suggested[0]["score"]) < 1e-9

    run = await env.run(wave)
    proposed = await env.pair(run["pairs"][0]["pair_id"])
    assert abs(proposed["score"] - suggested[0]["score"]) < 1e-9
    # Two sessions a month shared by two seats: one each, half of what the mentee wants.
    for breakdown in (suggested[0]["breakdown"], proposed["breakdown"]):
        assert availability(breakdown)["raw"] == 0.5
        assert "mentor 1 sessions/month per mentee" in availability(breakdown)["detail"]
