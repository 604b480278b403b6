"""GDPR in the matching service, on the real stack: the retention of ended
pairs' notes (a programme's ``notes_retention_days``; the pair's key shredded
and ``PairNotesExpired`` recorded, by the periodic task and by HR on demand,
against an injected clock); a participant's export (its candidate record,
pairs with scores and breakdowns, proposals, runs); an erasure leaving
no personal value in matching's tables; and an erasure ending the person's
pairs (its pair's key already shredded) with nothing parked. Matching seals
with the one vault, as on binome up."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from libs.auth.principal import HR_ADMIN, Principal
from libs.auth.tokens import TokenVerifier
from libs.events import registry
from libs.events.contexts.matching import PairNotesExpired
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.matching import SERVICE
from services.matching.bootstrap import Matching
from services.matching.service_layer.export import Export, MatchingExport
from services.matching.service_layer.retention import RetentionWorker
from tests.support.gdpr_export import assert_export_complete
from tests.support.kafka import wait_for
from tests.support.matching import MatchingEnv, matching_env
from tests.support.problems import problem

pytestmark = pytest.mark.integration

CANARY = "canary-3a7c-90d2"
ERASED_CANARY = "canary-77e1-0b5f"


@dataclasses.dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path_factory.mktemp("matching-gdpr"), kafka_bootstrap):
        yield environment


@pytest.fixture
async def clock_client(env: MatchingEnv) -> AsyncIterator[tuple[Clock, httpx.AsyncClient]]:
    """The matching app again, over the same schema, with a clock the test moves."""
    clock = Clock(datetime.now(UTC))
    settings = Settings(data_dir=env.enrollment.data_dir)
    ctx = ServiceContext(
        "matching", env.pool, env.store, "", settings, TokenVerifier.from_settings(settings), env.enrollment.vault
    )
    ctx.clock = clock
    transport = httpx.ASGITransport(app=SERVICE.build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://matching") as client:
        yield clock, client


async def formed_pair(env: MatchingEnv, programme: str) -> dict[str, Any]:
    wave = await env.wave(programme)
    await env.mentee(wave, themes_wanted=[{"theme": "data_ai", "level": 2}])
    await env.mentor(wave, themes_offered=[{"theme": "data_ai", "level": 3}])
    await env.synced()
    run = await env.run(wave)
    return await env.pair(run["pairs"][0]["pair_id"])


async def act(env: MatchingEnv, pair: dict[str, Any], action: str, body: Any = None) -> dict[str, Any]:
    return await env.ok("POST", f"/v1/pairs/{pair['pair_id']}:{action}", body)


async def expire(client: httpx.AsyncClient, env: MatchingEnv, **auth: Any) -> list[str]:
    response = await client.post("/v1/retention:expire-notes", headers=env.auth("hr_admin", **auth))
    assert response.status_code == 200, response.text
    return response.json()["expired"]


async def test_ended_pairs_notes_expire_after_the_programmes_retention(
    env: MatchingEnv, clock_client: tuple[Clock, httpx.AsyncClient]
) -> None:
    clock, client = clock_client
    short = await env.programme(name=f"short {uuid.uuid4().hex[:6]}", settings={"notes_retention_days": 30})
    default = await env.programme(name=f"default {uuid.uuid4().hex[:6]}")
    dissolved, declined = await formed_pair(env, short), await formed_pair(env, default)
    still_formed = await formed_pair(env, short)
    await act(env, dissolved, "confirm")
    await act(env, dissolved, "dissolve", {"reason": "no_chemistry", "note": f"{CANARY} dissolved"})
    await act(env, declined, "decline", {"note": f"{CANARY} declined"})
    await act(env, still_formed, "confirm")
    # Only this organisation's pairs concern another organisation's HR: nothing of theirs is due.
    clock.now += timedelta(days=400)
    assert await expire(client, env, org="org-b") == []
    clock.now -= timedelta(days=400)

    assert await expire(client, env) == []  # nothing has ended long enough
    clock.now += timedelta(days=31)
    assert await expire(client, env) == [dissolved["pair_id"]]
    assert await env.enrollment.vault.is_shredded(uuid.UUID(dissolved["pair_id"]))
    assert not await env.enrollment.vault.is_shredded(uuid.UUID(declined["pair_id"]))
    [*_, last] = await env.store.read_stream(dissolved["pair_id"])
    event = registry.load(last)
    assert isinstance(event, PairNotesExpired) and event.retention_days == 30 and not event.personal_fields
    assert last.causationid is None and "note" not in last.data
    doc = await env.pair(dissolved["pair_id"])
    assert doc["status"] == "dissolved" and doc["version"] == last.sequence
    assert doc["notes_expired"] == {"at": last.time.isoformat(), "retention_days": 30}
    assert (await env.pair(declined["pair_id"]))["notes_expired"] is None
    assert await expire(client, env) == []  # once

    # The periodic task does the same on its own.
    clock.now += timedelta(days=365)
    stop = asyncio.Event()
    worker = asyncio.create_task(RetentionWorker(Matching(env.pool, env.store), env.enrollment.vault, clock).run(stop))
    try:

        async def declined_expired() -> bool:
            return await env.enrollment.vault.is_shredded(uuid.UUID(declined["pair_id"]))

        await wait_for(declined_expired)
    finally:
        stop.set()
        await worker
    types = [e.type for e in await env.store.read_stream(declined["pair_id"])]
    assert types[-1] == "binome.matching.PairNotesExpired.v1"
    assert not await env.enrollment.vault.is_shredded(uuid.UUID(still_formed["pair_id"]))  # not ended: kept

    committee = await client.post(
        "/v1/retention:expire-notes", headers=env.auth("regional_committee", countries=["FR"])
    )
    problem(committee, 403)
    # The read tables rebuilt from the log know the notes expired.
    await Matching(env.pool, env.store).rebuild_read_tables()
    assert "notes_expired" in await env.pool.fetchval(
        f"SELECT doc::text FROM {env.store.schema}.pairs WHERE pair_id = $1", uuid.UUID(declined["pair_id"])
    )


async def test_the_export_holds_the_candidate_pairs_proposals_and_runs(env: MatchingEnv) -> None:
    programme = await env.programme(name=f"export {uuid.uuid4().hex[:6]}")
    pair = await formed_pair(env, programme)
    await act(env, pair, "decline", {"note": "not now"})
    mentee = pair["people"]["mentee_id"]
    rerun = await env.run(pair["wave_id"])
    assert rerun["pairs"] == []  # a declined partner is not proposed again

    url = f"/v1/participants/{mentee}/export"
    response = await env.client.get(url, headers=env.auth("hr_admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == "matching" and body["participant_id"] == mentee
    part = body["data"]
    assert part["candidate"]["role"] == "mentee" and part["candidate"]["employee_ref"]
    assert part["pairs"] == []
    [proposal] = part["proposals"]
    assert proposal["status"] == "declined" and proposal["score"] > 0 and proposal["breakdown"]
    assert "note" not in proposal
    runs = part["runs"]
    assert len(runs) == 2 and [len(r["pairs"]) for r in runs] == [1, 0]
    assert [u["participant_id"] for u in runs[1]["unmatched"]] == [mentee]

    problem(await env.client.get(url, headers=env.auth("regional_committee", countries=["FR"])), 403)
    problem(await env.client.get(url, headers=env.auth("hr_admin", org="org-b")), 404)
    problem(await env.client.get(f"/v1/participants/{uuid.uuid4()}/export", headers=env.auth("hr_admin")), 404)


async def test_the_export_is_typed_and_lost_nothing_of_any_document(env: MatchingEnv) -> None:
    """Every kind of document matching exports, each in every state that adds
    a key (confirmed, ended with a note, an exclusion lifted, an interest),
    validates against MatchingExport and keeps every key."""
    wave = await env.wave(await env.programme(name=f"typed {uuid.uuid4().hex[:6]}"))
    mentee = await env.mentee(wave, themes_wanted=[{"theme": "data_ai", "level": 2}])
    mentor = await env.mentor(wave, themes_offered=[{"theme": "data_ai", "level": 3}])
    await env.synced()
    interest = await env.client.post(
        f"/v1/mentors/{mentor}/interests", json={"mentee_id": mentee}, headers=env.as_participant(mentor)
    )
    assert interest.status_code == 201, interest.text
    pair = await env.pair((await env.run(wave))["pairs"][0]["pair_id"])
    await act(env, pair, "confirm")
    await act(env, pair, "dissolve", {"reason": "no_chemistry", "note": "typed note"})
    exclusion = await env.ok("POST", "/v1/exclusions", {"mentee_id": mentee, "mentor_id": mentor, "note": "keep apart"})
    await env.ok("POST", f"/v1/exclusions/{exclusion['exclusion_id']}:lift", {"reason": "try again"})

    response = await env.client.get(f"/v1/participants/{mentee}/export", headers=env.auth("hr_admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    [formed] = body["data"]["pairs"]
    assert formed["confirmed_by"] == "hr" and formed["ended"]["reason"] == "no_chemistry"
    assert [n["note"] for n in formed["notes"]] == ["typed note"]
    assert "notes_expired" not in formed  # absent until the notes expire, as the read model keeps it
    [excluded] = body["data"]["exclusions"]
    assert excluded["lifted_by"]["subject"] and [n.get("note") or n.get("reason") for n in excluded["notes"]] == [
        "keep apart", "try again",
    ]
    assert [i["mentor_id"] for i in body["data"]["interests"]] == [mentor]
    unfiltered = await Export(env.schema, env.store).collect(env.pool, Principal("hr-1", "org-a", {HR_ADMIN}), uuid.UUID(mentee))
    assert unfiltered is not None
    assert_export_complete("matching", body, unfiltered, MatchingExport)


async def test_an_erased_participant_leaves_no_personal_value_in_matching(env: MatchingEnv) -> None:
    # Other tests' notes are in matching's log (plain until it is sealed): this test has a canary of its own.
    programme = await env.programme(name=f"erase {uuid.uuid4().hex[:6]}")
    wave = await env.wave(programme)
    person = await env.mentee(
        wave, employee_ref=f"E-{ERASED_CANARY}", manager_ref=f"M-{ERASED_CANARY}", display_name=f"Ada {ERASED_CANARY}",
        themes_wanted=[{"theme": "data_ai", "level": 2}],
    )  # fmt: skip
    await env.synced()
    refs = f"SELECT employee_ref, manager_ref FROM {env.store.schema}.candidates WHERE participant_id = $1"
    # The HR references (for reporting-line exclusions), opened or still sealed depending on the wiring.
    assert all(await env.pool.fetchrow(refs, uuid.UUID(person)))
    response = await env.enrollment.client.post(f"/v1/participants/{person}:erase", headers=env.auth("hr_admin"))
    assert response.status_code == 200, response.text
    await env.synced()
    assert tuple(await env.pool.fetchrow(refs, uuid.UUID(person))) == ("", None)
    assert ERASED_CANARY not in await matching_tables(env)
    await Matching(env.pool, env.store).rebuild_read_tables()
    assert ERASED_CANARY not in await matching_tables(env)


async def test_erasing_a_member_dissolves_its_formed_pair_and_parks_nothing(env: MatchingEnv) -> None:
    """The erasure shreds the pair's key (owned by both members) before
    matching hears of it: ending the person's pairs must not need that key
    (nothing personal is written), and nothing may be parked."""
    programme = await env.programme(name=f"erase pair {uuid.uuid4().hex[:6]}")
    formed = await formed_pair(env, programme)
    await act(env, formed, "confirm")
    proposed = await formed_pair(env, programme)  # another pair (another wave): untouched
    erased = formed["people"]["mentee_id"]
    # Once the pair met, sessions sealed its notes with the pair's key: it exists, owned by both.
    people = [uuid.UUID(formed["people"]["mentee_id"]), uuid.UUID(formed["people"]["mentor_id"])]
    await env.enrollment.vault.key_for(uuid.UUID(formed["pair_id"]), people, "FR")
    response = await env.enrollment.client.post(f"/v1/participants/{erased}:erase", headers=env.auth("hr_admin"))
    assert response.status_code == 200, response.text
    assert await env.enrollment.vault.is_shredded(uuid.UUID(formed["pair_id"]))
    await env.synced()

    assert await parked(env) == []
    doc = await env.pair(formed["pair_id"])
    assert doc["status"] == "dissolved"
    [*_, last] = await env.store.read_stream(formed["pair_id"])
    event = registry.load(last)
    assert event.reason == "left_programme" and event.side == "mentee" and event.note is None
    assert (await env.pair(proposed["pair_id"]))["status"] == "proposed"  # not the erased person's
    assert await keys_owned_by(env, erased) == 0  # none made after the erasure: it would never be shredded


async def test_erasing_a_member_declines_its_proposal_and_parks_nothing(env: MatchingEnv) -> None:
    programme = await env.programme(name=f"erase proposal {uuid.uuid4().hex[:6]}")
    proposal = await formed_pair(env, programme)
    erased = proposal["people"]["mentor_id"]
    response = await env.enrollment.client.post(f"/v1/participants/{erased}:erase", headers=env.auth("hr_admin"))
    assert response.status_code == 200, response.text
    await env.synced()

    assert await parked(env) == []
    assert (await env.pair(proposal["pair_id"]))["status"] == "declined"
    assert await keys_owned_by(env, erased) == 0


async def parked(env: MatchingEnv) -> list[tuple[str, str]]:
    """(event type, reason) of what the candidate pool parked."""
    rows = await env.pool.fetch(
        f"SELECT event_type, reason FROM {env.schema}.dead_letters WHERE consumer = $1", env.consumer
    )
    return [tuple(r) for r in rows]


async def keys_owned_by(env: MatchingEnv, participant_id: str) -> int:
    owned = f"SELECT count(*) FROM {env.enrollment.vault.schema}.data_keys WHERE $1 = ANY(owners)"
    return await env.pool.fetchval(owned, uuid.UUID(participant_id))


async def matching_tables(env: MatchingEnv) -> str:
    tables = await env.pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        env.store.schema,
    )
    texts = []
    for table in tables:
        rows = await env.pool.fetch(f'SELECT t::text FROM {env.store.schema}."{table[0]}" t')
        texts += [r[0] for r in rows]
    return "\n".join(texts)
