"""Matching runs on the real stack: the candidate pool fed by real enrollment
events through the broker, runs, pins, exclusions, capacity, determinism,
cross-border rules, country isolation and problem+json on bad input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from libs.events import registry
from libs.events.contexts.matching import MatchingRunCompleted, PairProposed
from libs.events.serialization import loads
from tests.support.matching import MatchingEnv, matching_env
from tests.support.problems import fields, problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("matching-runs"), kafka_bootstrap):
        yield environment


def pairs_of(run: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["mentee_id"], p["mentor_id"]) for p in run["pairs"]}


async def stored(env: MatchingEnv, event_type: type) -> list[Any]:
    rows = await env.pool.fetch(
        f"SELECT envelope::text FROM {env.schema}.events WHERE type = $1 ORDER BY position", event_type.event_type()
    )
    return [registry.load(loads(r[0])) for r in rows]


async def test_pool_follows_enrollment_qualification_profile_and_withdrawal(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    mentee = await env.mentee(wave)
    leaving = await env.mentee(wave)
    qualified = await env.mentor(wave)
    unqualified = await env.mentor(wave, qualified=False)
    await env.enrollment.client.patch(
        f"/v1/participants/{mentee}", json={"job_level": 14}, headers=env.enrollment.auth()
    )
    await env.withdraw(leaving)
    await env.synced()

    preview = await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]})
    assert preview["inputs"]["mentee_ids"] == [mentee]  # the withdrawn mentee left the pool
    assert preview["inputs"]["mentor_ids"] == [qualified]  # only qualified mentors are matchable
    assert unqualified not in preview["inputs"]["mentor_ids"]
    profile = await env.pool.fetchval(
        f"SELECT profile->>'job_level' FROM {env.schema}.candidates WHERE participant_id = $1", uuid.UUID(mentee)
    )
    assert profile == "14"
    assert preview["recorded"] is False and await env.count_events() == 0


async def test_run_records_the_optimum_and_one_proposal_per_pair(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    mentees = [await env.mentee(wave) for _ in range(3)]
    # A mentor offering the wanted theme, and one offering nothing the mentees want.
    good = await env.mentor(wave, capacity=2)
    weak = await env.mentor(wave, capacity=2, themes_offered=[{"theme": "cybersecurity", "level": 2}])
    await env.synced()

    run = await env.run(wave)
    assert run["recorded"] is True and run["optimal"] is True
    assert run["objective"] == "max_total_score" and run["countries"] == ["FR"]
    assert sorted(p["mentee_id"] for p in run["pairs"]) == sorted(mentees)
    per_mentor = [p["mentor_id"] for p in run["pairs"]]
    assert per_mentor.count(good) == 2 and per_mentor.count(weak) == 1  # capacity 2 each, best one filled
    assert run["inputs"]["mentor_capacity"] == {good: 2, weak: 2}
    assert len(run["inputs"]["policy_digest"]) == 64

    (completed,) = await stored(env, MatchingRunCompleted)
    assert str(completed.run_id) == run["run_id"] and completed.actor.subject == "hr-1"
    proposals = [p for p in await stored(env, PairProposed) if p.run_id == completed.run_id]
    assert {(str(p.people.mentee_id), str(p.people.mentor_id)) for p in proposals} == pairs_of(run)

    pair = await env.pair(run["pairs"][0]["pair_id"])
    assert pair["status"] == "proposed" and pair["origin"] == "run" and pair["run_id"] == run["run_id"]
    assert abs(sum(c["points"] for c in pair["breakdown"]) - pair["score"]) < 1e-6
    assert {c["criterion"] for c in pair["breakdown"]} >= {"themes", "language", "time_zone", "cross_entity"}
    assert (await env.ok("GET", f"/v1/runs/{run['run_id']}"))["pairs"] == run["pairs"]


async def test_same_inputs_same_answer(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    for _ in range(4):
        await env.mentee(wave)
    for level in (2, 3, 4):
        await env.mentor(wave, capacity=1, themes_offered=[{"theme": "data_ai", "level": level}])
    await env.synced()

    first = await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]})
    second = await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]})
    run = await env.run(wave)
    for other in (second, run):
        assert other["inputs"] == first["inputs"]
        assert pairs_of(other) == pairs_of(first)
        assert other["total_score"] == first["total_score"]
        assert other["unmatched"] == first["unmatched"]
    assert [u["code"] for u in run["unmatched"]] == ["capacity_exhausted"]
    # The objective comes from the request when given, else from the programme.
    assert run["objective"] == "max_total_score"
    other = await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave], "objective": "max_matched_then_score"})
    assert other["objective"] == "max_matched_then_score"
    assert other["inputs"]["policy_digest"] != run["inputs"]["policy_digest"]
    metrics = (await env.client.get("/metrics")).text
    assert 'binome_matching_run_duration_seconds_count{outcome="ok",service="matching"}' in metrics


async def test_pins_are_respected_and_a_bad_pin_is_refused(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    mentee = await env.mentee(wave)
    best = await env.mentor(wave, capacity=1)
    other = await env.mentor(wave, capacity=1, themes_offered=[{"theme": "cybersecurity", "level": 2}])
    senior = await env.mentor(wave, capacity=1, job_level=12)  # above the mentee: the seniority rule
    await env.synced()
    before = await env.count_events()

    bad = await env.client.post(
        "/v1/runs", json={"wave_ids": [wave], "pins": [{"mentee_id": mentee, "mentor_id": senior}]},
        headers=env.auth("hr_admin"),
    )
    body = problem(bad, 422)
    assert fields(body) == ["body.pins.0"] and "gap" in body["errors"][0]["message"]
    unknown = await env.client.post(
        "/v1/runs", json={"wave_ids": [wave], "pins": [{"mentee_id": mentee, "mentor_id": wave}]},
        headers=env.auth("hr_admin"),
    )
    assert fields(problem(unknown, 422)) == ["body.pins.0.mentor_id"]
    assert await env.count_events() == before  # nothing changed

    run = await env.run(wave, pins=[{"mentee_id": mentee, "mentor_id": other}])
    assert [(p["mentee_id"], p["mentor_id"], p["pinned"]) for p in run["pairs"]] == [(mentee, other, True)]
    assert best != other and run["inputs"]["pinned"][0]["mentor_id"] == other


async def test_hr_exclusion_rules_a_pair_out(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    mentee = await env.mentee(wave)
    best = await env.mentor(wave, capacity=1)
    second = await env.mentor(wave, capacity=1, themes_offered=[{"theme": "data_ai", "level": 1}])
    await env.synced()
    assert pairs_of(await env.ok("POST", "/v1/runs:preview", {"wave_ids": [wave]})) == {(mentee, best)}

    excluded = await env.ok("POST", "/v1/exclusions", {"mentee_id": mentee, "mentor_id": best, "note": "same team"})
    assert excluded["mentor_id"] == best and excluded["country"] == "FR"
    again = await env.client.post(
        "/v1/exclusions", json={"mentee_id": mentee, "mentor_id": best}, headers=env.auth("hr_admin")
    )
    problem(again, 409)
    run = await env.run(wave)
    assert pairs_of(run) == {(mentee, second)} and run["inputs"]["excluded"] == 1


async def test_capacity_is_the_remaining_seats(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    first = [await env.mentee(wave) for _ in range(2)]
    mentor = await env.mentor(wave, capacity=2)
    await env.synced()
    assert len((await env.run(wave))["pairs"]) == 2

    late = await env.mentee(wave)
    await env.synced()
    run = await env.run(wave)
    assert run["pairs"] == [] and run["inputs"]["mentee_ids"] == [late]  # proposed mentees are not free
    codes = {(u["participant_id"], u["code"]) for u in run["unmatched"]}
    assert codes == {(late, "no_feasible_partner"), (mentor, "no_capacity")}
    held = await env.ok("GET", f"/v1/pairs?participant_id={mentor}&status=proposed")
    assert sorted(p["people"]["mentee_id"] for p in held["items"]) == sorted(first)


async def test_cross_border_run_needs_hr_admin(env: MatchingEnv) -> None:
    programme = await env.programme()
    fr, de = await env.wave(programme, "FR"), await env.wave(programme, "DE")
    mentee = await env.mentee(fr)
    mentor = await env.mentor(de, entity="Acme Deutschland")
    await env.synced()
    committee = env.auth("regional_committee", countries=["FR", "DE"])
    refused = await env.client.post("/v1/runs", json={"wave_ids": [fr, de]}, headers=committee)
    problem(refused, 403)

    run = await env.run(fr, de)
    assert run["countries"] == ["DE", "FR"] and pairs_of(run) == {(mentee, mentor)}
    pair = await env.pair(run["pairs"][0]["pair_id"])
    assert pair["country"] == "FR" and pair["people"]["mentor_country"] == "DE"  # home: the mentee's
    # The cross-border run is not a committee's to read, even one holding FR.
    fr_committee = env.auth("regional_committee", countries=["FR"])
    problem(await env.client.get(f"/v1/runs/{run['run_id']}", headers=fr_committee), 404)


async def test_committees_act_only_on_their_countries(env: MatchingEnv) -> None:
    programme = await env.programme()
    de = await env.wave(programme, "DE")
    await env.mentee(de)
    await env.mentor(de)
    await env.synced()
    fr_committee = env.auth("regional_committee", countries=["FR"])
    problem(await env.client.post("/v1/runs", json={"wave_ids": [de]}, headers=fr_committee), 404)

    run = await env.run(de)
    pair_id = run["pairs"][0]["pair_id"]
    hidden = (f"/v1/pairs/{pair_id}", f"/v1/runs/{run['run_id']}", "/v1/pairs?country=DE", f"/v1/pairs?wave_id={de}")
    for path in hidden:
        problem(await env.client.get(path, headers=fr_committee), 404)
    problem(await env.client.post(f"/v1/pairs/{pair_id}:confirm", headers=fr_committee), 404)
    listed = (await env.client.get("/v1/pairs?limit=200", headers=fr_committee)).json()["items"]
    assert all(p["country"] == "FR" for p in listed)
    nowhere = env.auth("regional_committee")  # a committee granted no country sees nothing
    assert (await env.client.get("/v1/pairs", headers=nowhere)).json()["items"] == []
    de_committee = env.auth("regional_committee", countries=["DE"])
    assert (await env.client.get(f"/v1/pairs/{pair_id}", headers=de_committee)).status_code == 200
    assert (await env.client.get(f"/v1/runs/{run['run_id']}", headers=de_committee)).status_code == 200


async def test_bad_input_is_a_problem_naming_the_field_and_changes_nothing(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    await env.synced()
    hr = env.auth("hr_admin")
    before = await env.count_events()
    cases = [
        ({"wave_ids": [wave], "colour": "red"}, ["body.colour"]),
        ({"wave_ids": []}, ["body.wave_ids"]),
        ({"wave_ids": [wave, wave]}, ["body.wave_ids"]),
        ({"wave_ids": ["not-a-uuid"]}, ["body.wave_ids.0"]),
        ({"wave_ids": [wave], "objective": "max_fun"}, ["body.objective"]),
    ]
    for body, expected in cases:
        assert fields(problem(await env.client.post("/v1/runs", json=body, headers=hr), 422)) == expected
    problem(await env.client.post("/v1/runs", json={"wave_ids": [str(uuid.uuid4())]}, headers=hr), 404)
    problem(await env.client.get("/v1/pairs?limit=0", headers=hr), 422)
    problem(await env.client.get("/v1/pairs?cursor=garbage", headers=hr), 422)
    assert await env.count_events() == before


async def test_ops_and_participants_cannot_run_and_ended_waves_are_closed(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    await env.synced()
    for headers in (env.auth("ops"), env.as_participant(wave)):
        problem(await env.client.post("/v1/runs", json={"wave_ids": [wave]}, headers=headers), 403)
        problem(await env.client.get("/v1/runs", headers=headers), 403)
    problem(await env.client.get("/v1/pairs", headers=env.auth("ops")), 403)
    assert (await env.client.get("/metrics")).status_code == 200

    await env.enrollment.post(f"/v1/waves/{wave}:close-enrolment", {})
    await env.enrollment.post(f"/v1/waves/{wave}:end", {})
    await env.synced()
    problem(await env.client.post("/v1/runs", json={"wave_ids": [wave]}, headers=env.auth("hr_admin")), 409)


async def test_runs_list_paginates_with_cursors(env: MatchingEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme)
    await env.synced()
    ids = [(await env.run(wave))["run_id"] for _ in range(3)]
    page = await env.ok("GET", f"/v1/runs?programme_id={programme}&limit=2")
    rest = await env.ok("GET", f"/v1/runs?programme_id={programme}&limit=2&cursor={page['next_cursor']}")
    # In run id order, stable across a rebuild of the read tables.
    assert [r["run_id"] for r in page["items"] + rest["items"]] == sorted(ids) and rest["next_cursor"] is None
    other = await env.client.get(f"/v1/runs?limit=2&cursor={page['next_cursor']}", headers=env.auth("hr_admin"))
    assert fields(problem(other, 422)) == ["query.cursor"]
