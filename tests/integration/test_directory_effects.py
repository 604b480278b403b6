"""What the organisation's HR directory does to the programme, on the real
stack: directory events appended to the directory context's log and relayed
as the directory service does; enrollment's directory consumer and matching's
reporting lines apply them; enrollment's events reach matching's pool.

* enrolment by employee reference takes the profile from the directory; bad
  references are 422s naming the field, and change nothing;
* a change of a linked person is a new ``ParticipantProfileUpdated`` (cause
  ``directory``), a new country a ``ParticipantRelocated`` (nothing moves);
* matching's "same reporting line" is the whole manager chain, and follows a
  change of manager; a cycle in the log ends the chain;
* a leaver withdraws from the wave ("left the organisation") and their pairs
  end (``left_company``); a reactivation restores nothing, re-enrolment works;
* an erased person leaves both read models.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from jsonschema import Draft202012Validator

from libs.events import registry
from libs.events.schemagen import envelope_schema

from services.enrollment.bootstrap import Enrollment
from tests.support.directory_feed import DirectoryEnv, directory_env
from tests.support.matching import QUALIFIED
from tests.support.problems import fields, problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[DirectoryEnv]:
    async for environment in directory_env(pool, tmp_path_factory.mktemp("directory-effects"), kafka_bootstrap):
        yield environment


def ref(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


def mentee_body(employee_ref: str, **overrides: Any) -> dict[str, Any]:
    return {
        "role": "mentee",
        "employee_ref": employee_ref,
        "motivation": "Understand what juniors see.",
        "tenure_years": 15,
        "learner_profile": "experiential",
        "intentions": ["find_digital_profiles"],
        "themes_wanted": [{"theme": "data_ai", "level": 1}],
        **overrides,
    }


def mentor_body(employee_ref: str, **overrides: Any) -> dict[str, Any]:
    return mentee_body(
        employee_ref,
        role="mentor",
        tenure_years=1,
        intentions=["understand_businesses"],
        themes_wanted=[],
        themes_offered=[{"theme": "data_ai", "level": 4}],
        **overrides,
    )


async def from_directory(env: DirectoryEnv, wave: str, body: dict[str, Any]):
    return await env.enrollment.client.post(
        f"/v1/waves/{wave}/participants:from-directory", json=body, headers=env.enrollment.auth()
    )


async def enrolled(env: DirectoryEnv, wave: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await from_directory(env, wave, body)
    assert response.status_code == 201, response.text
    return response.json()


async def participant(env: DirectoryEnv, participant_id: str) -> dict[str, Any]:
    response = await env.enrollment.client.get(f"/v1/participants/{participant_id}", headers=env.enrollment.auth())
    assert response.status_code == 200, response.text
    return response.json()


async def events_of(env: DirectoryEnv, participant_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type.split(".")[2], e.data) for e in await env.enrollment.store.read_stream(participant_id)]


async def new_wave(env: DirectoryEnv, country: str = "FR") -> str:
    return await env.matching.wave(await env.matching.programme(), country)


async def test_an_enrolment_by_employee_reference_takes_the_profile_from_the_directory(env: DirectoryEnv) -> None:
    boss, number = ref("B"), ref("E")
    await env.provision(boss, job_level=16)
    await env.provision(number, manager=boss, job_level=12, department="Treasury")
    await env.synced()
    wave = await new_wave(env)

    doc = await enrolled(env, wave, mentee_body(number, time_zone="Europe/Brussels"))
    assert doc["display_name"] == f"Dir {number}" and doc["email"] == f"{number.lower()}@example.com"
    assert doc["manager_ref"] == boss and doc["country"] == "FR" and doc["employee_ref"] == number
    profile = doc["profile"]
    assert (profile["entity"], profile["business_function"], profile["job_level"]) == ("Acme France", "finance", 12)
    assert profile["department"] == "Treasury" and profile["languages"] == ["fr", "en"]
    assert profile["time_zone"] == "Europe/Brussels"  # what the body gives wins


async def test_a_person_whose_feed_does_not_state_active_counts_as_active(env: DirectoryEnv) -> None:
    """SCIM ``active`` omitted or null: the directory reads it as active, and
    so does enrollment's copy (it used to refuse the row for ever: the
    consumer retried a NOT NULL violation as a table refusing writes)."""
    number = ref("N")
    await env.provision(number, active=None)
    await env.synced()
    doc = await enrolled(env, await new_wave(env), mentee_body(number))
    assert doc["employee_ref"] == number


async def test_bad_references_are_422_naming_the_field_and_change_nothing(env: DirectoryEnv) -> None:
    gone, german, incomplete = ref("G"), ref("D"), ref("I")
    await env.provision(gone)
    await env.deactivate(gone)
    await env.provision(german, country="DE", timezone="Europe/Berlin")
    await env.provision(incomplete, job_level=None)
    await env.synced()
    wave = await new_wave(env)
    before = await env.enrollment.count_events()

    for body, field in [
        (mentee_body("NOBODY-1"), "employee_ref"),
        (mentee_body(gone), "employee_ref"),
        (mentee_body(german), "country"),
        (mentee_body(incomplete), "job_level"),
        (mentee_body(incomplete, country="FR"), "country"),  # the directory's, never the body's
    ]:
        assert fields(problem(await from_directory(env, wave, body), 422)) == [f"body.{field}"], body
    assert await env.enrollment.count_events() == before

    doc = await enrolled(env, wave, mentee_body(incomplete, job_level=11))  # the body fills the gap
    assert doc["profile"]["job_level"] == 11


async def test_a_directory_change_is_a_new_profile_event_and_a_new_country_is_for_the_committee(env: DirectoryEnv) -> None:
    number = ref("E")
    await env.provision(number, job_level=12, department="Treasury")
    await env.synced()
    wave = await new_wave(env)
    participant_id = (await enrolled(env, wave, mentee_body(number)))["participant_id"]

    await env.update(number, department="Digital Office", job_level=13, country="DE")
    await env.synced()
    doc = await participant(env, participant_id)
    assert doc["profile"]["department"] == "Digital Office" and doc["profile"]["job_level"] == 13
    assert doc["status"] == "enrolled" and doc["country"] == "FR" and doc["wave_id"] == wave  # no transfer
    assert doc["directory_country"] == "DE"
    history = await events_of(env, participant_id)
    assert [name for name, _ in history] == ["ParticipantEnrolled", "ParticipantProfileUpdated", "ParticipantRelocated"]
    assert history[0][1]["profile"]["department"] == "Treasury"  # history stays as it was
    update = history[1][1]
    for stored in await env.enrollment.store.read_stream(participant_id):  # the contract holds for the new types
        Draft202012Validator(envelope_schema(registry.models[stored.type])).validate(stored.model_dump(mode="json"))
    assert update["cause"] == "directory" and sorted(update["changed"]) == ["department", "job_level"]
    assert update["actor"]["client_id"] == "workday"

    await env.update(number, country="FR")  # back: nothing left for the committee
    await env.synced()
    assert (await participant(env, participant_id))["directory_country"] is None


async def test_matching_excludes_the_whole_manager_chain_and_follows_a_new_manager(env: DirectoryEnv) -> None:
    top, middle, other, exec_ = ref("T"), ref("M"), ref("O"), ref("X")
    await env.provision(top, job_level=3)
    await env.provision(middle, manager=top, job_level=14)
    await env.provision(other, job_level=3)
    await env.provision(exec_, manager=middle, job_level=15)
    await env.synced()
    wave = await new_wave(env)
    mentee = (await enrolled(env, wave, mentee_body(exec_)))["participant_id"]
    mentor = (await enrolled(env, wave, mentor_body(top, job_level=3)))["participant_id"]
    await env.enrollment.post(f"/v1/participants/{mentor}/qualification", QUALIFIED)
    await env.synced()

    run = await env.matching.run(wave)
    assert run["pairs"] == []  # the mentor is the mentee's manager's manager
    assert {u["participant_id"]: u["code"] for u in run["unmatched"]}[mentee] == "no_feasible_partner"

    await env.update(exec_, manager=other)  # the new chain: other only
    await env.synced()
    run = await env.matching.run(wave)
    assert [p["mentor_id"] for p in run["pairs"]] == [mentor]


async def test_a_cycle_in_the_log_ends_the_chain(env: DirectoryEnv) -> None:
    a, b, c = ref("A"), ref("B"), ref("C")
    await env.provision(a)
    await env.provision(b, manager=a)
    await env.provision(c, manager=b)
    await env.update(a, manager=c)  # the directory refuses this; a log may still hold it
    await env.synced()
    chain = await env.matching.pool.fetchval(f"SELECT {env.matching.schema}.manager_chain('org-a', $1)", c)
    assert chain == [b, a]


async def test_a_leaver_withdraws_and_their_pairs_end_a_reactivation_restores_nothing(env: DirectoryEnv) -> None:
    leaver, mentor_ref = ref("L"), ref("R")
    await env.provision(leaver, job_level=15)
    await env.provision(mentor_ref, job_level=3)
    await env.synced()
    wave = await new_wave(env)
    mentee = (await enrolled(env, wave, mentee_body(leaver)))["participant_id"]
    mentor = (await enrolled(env, wave, mentor_body(mentor_ref)))["participant_id"]
    await env.enrollment.post(f"/v1/participants/{mentor}/qualification", QUALIFIED)
    await env.synced()
    pair = (await env.matching.run(wave))["pairs"][0]
    await env.matching.ok("POST", f"/v1/pairs/{pair['pair_id']}:confirm")

    await env.deactivate(leaver)
    await env.synced()
    doc = await participant(env, mentee)
    assert doc["status"] == "withdrawn"
    assert doc["withdrawal"]["reason"] == "left the organisation"
    assert doc["withdrawal"]["cause"] == "left_organisation"
    assert doc["withdrawal"]["withdrawn_by"]["client_id"] == "workday"
    ended = await env.matching.pair(pair["pair_id"])
    assert ended["status"] == "dissolved" and ended["ended"]["reason"] == "left_company"
    assert (await participant(env, mentor))["status"] == "enrolled"

    await env.reactivate(leaver)
    await env.synced()
    assert (await participant(env, mentee))["status"] == "withdrawn"  # nothing comes back by itself
    assert (await env.matching.pair(pair["pair_id"]))["status"] == "dissolved"
    again = await enrolled(env, wave, mentee_body(leaver))  # they may be enrolled again
    assert again["participant_id"] != mentee and again["status"] == "enrolled"


async def test_an_erased_person_leaves_both_read_models(env: DirectoryEnv) -> None:
    number = ref("Z")
    person_id = await env.provision(number)
    await env.synced()
    e, m = env.enrollment.schema, env.matching.schema
    assert await env.matching.pool.fetchval(f"SELECT count(*) FROM {e}.directory_people WHERE person_id = $1", person_id) == 1

    await env.erase(number)
    await env.synced()
    for table in (f"{e}.directory_people", f"{m}.reporting_lines"):
        assert await env.matching.pool.fetchval(f"SELECT count(*) FROM {table} WHERE person_id = $1", person_id) == 0
    problem(await from_directory(env, await new_wave(env), mentee_body(number)), 422)


async def test_a_rebuild_of_the_directory_copy_takes_no_effect_twice(env: DirectoryEnv) -> None:
    """A replay passes through old states of a person: ``directory_people``
    is rebuilt, but no participant gets those old values again."""
    number = ref("P")
    person_id = await env.provision(number, department="Treasury")
    await env.synced()
    wave = await new_wave(env)
    participant_id = (await enrolled(env, wave, mentee_body(number)))["participant_id"]
    await env.update(number, department="Digital Office")
    await env.update(number, department="Strategy")
    await env.synced()
    before = await env.enrollment.count_events()
    assert (await participant(env, participant_id))["profile"]["department"] == "Strategy"

    feed = Enrollment(env.matching.pool, env.enrollment.store, env.enrollment.vault).directory_feed()
    stream = await env.enrollment.store.personal.open(await env.store.read_stream(str(person_id)))
    async with env.matching.pool.acquire() as conn, conn.transaction():
        await feed.reset(conn)
        for envelope in stream:  # as `binome replay enrollment enrollment-directory` applies them
            await feed.handle(conn, envelope, registry.load(envelope))

    assert await env.enrollment.count_events() == before
    assert (await participant(env, participant_id))["profile"]["department"] == "Strategy"
    e = env.enrollment.schema
    row = await env.matching.pool.fetchrow(f"SELECT profile::text, version FROM {e}.directory_people WHERE person_id = $1", person_id)
    assert '"Strategy"' in row["profile"] and row["version"] == 3


async def test_a_bulk_import_names_people_by_employee_reference(env: DirectoryEnv) -> None:
    first, second = ref("U"), ref("V")
    await env.provision(first, job_level=14, department="Audit")
    await env.provision(second, job_level=16)
    await env.synced()
    wave = await new_wave(env)
    header = "role,employee_ref,motivation,tenure_years,learner_profile,intentions,themes_wanted\n"
    csv = header + "".join(
        f"mentee,{number},Learn.,9,mixed,find_digital_profiles,data_ai:2\n" for number in (first, "NOBODY-2", second)
    )
    path = f"/v1/waves/{wave}/participants:import?source=directory"
    headers = {**env.enrollment.auth(), "content-type": "text/csv"}
    before = await env.enrollment.count_events()

    rejected = problem(await env.enrollment.client.post(path, content=csv, headers=headers), 422)
    assert [(e["line"], e["field"]) for e in rejected["errors"]] == [(3, "employee_ref")]
    assert await env.enrollment.count_events() == before

    response = await env.enrollment.client.post(f"{path}&mode=valid_only", content=csv, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 2
    listed = await env.enrollment.client.get(f"/v1/participants?wave_id={wave}", headers=env.enrollment.auth())
    by_ref = {p["employee_ref"]: p for p in listed.json()["items"]}
    assert set(by_ref) == {first, second}
    assert by_ref[first]["profile"]["department"] == "Audit" and by_ref[second]["profile"]["job_level"] == 16
    assert by_ref[first]["display_name"] == f"Dir {first}"
