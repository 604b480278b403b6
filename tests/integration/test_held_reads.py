"""Held reads over a real PostgreSQL (libs/api/held_reads.py): the read
tables' triggers notify a write from any connection but one that announces
its writes itself, a worker hears them, a lost listening connection holds
nothing until it listens again, and the participants list holds what it may
and nothing else."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs.api.held_reads import ANNOUNCES, CHANNEL, HeldReads, TableChanges
from libs.eventstore.migrations import migrate
from services.enrollment import SERVICE
from tests.support.enrollment import EnrollmentEnv, enrollment_env, mentee
from tests.support.matching import MatchingEnv, matching_env

pytestmark = pytest.mark.integration

APPLICATION = "binome held reads test"


async def eventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


async def settled(changes: TableChanges) -> None:
    """Once every notification of what was written so far has been heard."""
    while True:
        moment = changes.moment()
        await asyncio.sleep(0.3)
        if changes.moment() == moment:
            return


@pytest.fixture
async def enrollment_schema(pool: asyncpg.Pool) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        await migrate(conn, name, SERVICE.migrations)
    try:
        yield name
    finally:
        await pool.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[list[str]]:
    """The payloads notified on the channel, as a listener receives them."""
    payloads: list[str] = []
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: payloads.append(payload))
    try:
        yield payloads
    finally:
        await conn.close()


@pytest.fixture
async def listening(database_url: str) -> AsyncIterator[TableChanges]:
    changes, stop = TableChanges(), asyncio.Event()
    connect = functools.partial(asyncpg.connect, database_url, server_settings={"application_name": APPLICATION})
    task = asyncio.create_task(changes.listen(connect, stop))
    try:
        await eventually(lambda: changes.listening, "listening")
        yield changes
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_a_write_to_a_read_table_is_notified_once_committed(
    pool: asyncpg.Pool, enrollment_schema: str, heard: list[str]
) -> None:
    for table in ("programmes", "waves", "participants"):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"UPDATE {enrollment_schema}.{table} SET organisation = organisation WHERE false")
            await asyncio.sleep(0.2)
            assert enrollment_schema not in heard  # not before the commit
        await eventually(lambda: heard.count(enrollment_schema) == 1, f"one notification for {table}")
        heard.clear()
    await pool.execute(f"TRUNCATE {enrollment_schema}.participants CASCADE")
    await eventually(lambda: enrollment_schema in heard, "a notification for a TRUNCATE")


async def test_a_write_rolled_back_is_not_notified(pool: asyncpg.Pool, enrollment_schema: str, heard: list[str]) -> None:
    with pytest.raises(ZeroDivisionError):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"UPDATE {enrollment_schema}.participants SET organisation = organisation WHERE false")
            raise ZeroDivisionError
    await pool.execute(f"UPDATE {enrollment_schema}.waves SET organisation = organisation WHERE false")  # a marker, after it
    await eventually(lambda: enrollment_schema in heard, "the marker")
    assert heard.count(enrollment_schema) == 1


async def test_a_connection_that_announces_its_writes_sends_no_notification(
    database_url: str, pool: asyncpg.Pool, enrollment_schema: str, heard: list[str]
) -> None:
    announcing = await asyncpg.connect(database_url, server_settings={ANNOUNCES: "on"})
    try:
        await announcing.execute(f"UPDATE {enrollment_schema}.participants SET organisation = organisation WHERE false")
    finally:
        await announcing.close()
    await pool.execute(f"UPDATE {enrollment_schema}.waves SET organisation = organisation WHERE false")  # a marker, after it
    await eventually(lambda: enrollment_schema in heard, "the marker")
    assert heard.count(enrollment_schema) == 1  # the marker's alone


async def test_a_worker_hears_a_write_from_another_connection(
    pool: asyncpg.Pool, enrollment_schema: str, listening: TableChanges
) -> None:
    before = listening.moment()
    await pool.execute(f"UPDATE {enrollment_schema}.participants SET organisation = organisation WHERE false")
    await eventually(lambda: listening.moment() != before, "the change heard")


async def test_a_lost_listening_connection_holds_nothing_until_it_listens_again(
    pool: asyncpg.Pool, enrollment_schema: str, listening: TableChanges
) -> None:
    held = HeldReads(listening, max_age_s=60)
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        return reads

    assert await held.read("page", read, lambda _: True) == 1
    assert await held.read("page", read, lambda _: True) == 1

    killed = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", APPLICATION
    )
    assert killed == 1
    await eventually(lambda: not listening.listening, "the loss noticed")
    assert await held.read("page", read, lambda _: True) == 2  # read: a change now would go unheard
    assert await held.read("page", read, lambda _: True) == 3

    await eventually(lambda: listening.listening, "listening again", timeout=20)
    assert await held.read("page", read, lambda _: True) == 4  # nothing from before the loss
    assert await held.read("page", read, lambda _: True) == 4
    before = listening.moment()
    await pool.execute(f"UPDATE {enrollment_schema}.participants SET organisation = organisation WHERE false")
    await eventually(lambda: listening.moment() != before, "a change heard on the new connection")
    assert await held.read("page", read, lambda _: True) == 5


# --------------------------------------------------------------------------- the participants list


@pytest.fixture
async def env(
    pool: asyncpg.Pool, tmp_path: Path, listening: TableChanges
) -> AsyncIterator[EnrollmentEnv]:
    async for environment in enrollment_env(pool, tmp_path, HeldReads(listening, max_age_s=60)):
        yield environment


async def listed(env: EnrollmentEnv, wave_id: str, **params: str) -> dict[str, Any]:
    response = await env.client.get(
        "/v1/participants", params={"wave_id": wave_id, **params}, headers=env.auth("hr_admin", sub="hr-global")
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_list_is_held_until_a_participant_changes(env: EnrollmentEnv, listening: TableChanges) -> None:
    wave = await env.wave((await env.programme())["programme_id"])
    first = await env.enrol(wave["wave_id"], mentee("E-HELD-1"))
    await settled(listening)
    page = await listed(env, wave["wave_id"])
    assert [p["participant_id"] for p in page["items"]] == [first["participant_id"]]

    # Held: a change behind the platform's back that nobody announces is not
    # seen (a console's UPDATE is notified; this one pretends to be a worker).
    async with env.pool.acquire() as conn:
        await conn.execute(f"SET {ANNOUNCES} = 'on'")
        try:
            await conn.execute(
                f"UPDATE {env.schema}.participants SET doc = jsonb_set(doc, '{{profile,entity}}', '\"Held\"')"
            )
        finally:
            await conn.execute(f"RESET {ANNOUNCES}")
    assert await listed(env, wave["wave_id"]) == page

    # This service's own write (its connections notify: no AnnouncedWrites here) is heard.
    second = await env.enrol(wave["wave_id"], mentee("E-HELD-2"))
    deadline = asyncio.get_running_loop().time() + 10
    while len((await listed(env, wave["wave_id"]))["items"]) != 2:
        assert asyncio.get_running_loop().time() < deadline, "the enrolment never showed"
        await asyncio.sleep(0.02)
    items = (await listed(env, wave["wave_id"]))["items"]
    assert {p["participant_id"] for p in items} == {first["participant_id"], second["participant_id"]}
    assert {p["profile"]["entity"] for p in items if p["participant_id"] == first["participant_id"]} == {"Held"}


async def test_a_list_showing_an_erasure_is_never_held(env: EnrollmentEnv) -> None:
    """The erasure's progress lives in the key vault, whose changes nobody
    announces: the list must show it move, held reads or not."""
    wave = await env.wave((await env.programme())["programme_id"])
    gone = await env.enrol(wave["wave_id"], mentee("E-HELD-GONE"))
    hr = env.auth("hr_admin", sub="hr-global")
    assert (await env.client.post(f"/v1/participants/{gone['participant_id']}:erase", headers=hr)).status_code == 200
    compactor = f"held-test-{uuid.uuid4().hex[:8]}"
    await env.vault.register_compactor(compactor)
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while (await listed(env, wave["wave_id"]))["items"][0]["erasure"]["status"] != "pending":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        await listed(env, wave["wave_id"])  # read twice: a holdable page would now be held
        await env.vault.mark_compacted(compactor, [uuid.UUID(gone["participant_id"])])
        assert (await listed(env, wave["wave_id"]))["items"][0]["erasure"]["status"] == "completed"
    finally:
        await env.pool.execute(f"DELETE FROM {env.vault.schema}.compactors WHERE service = $1", compactor)


# --------------------------------------------------------------------------- a pair, by id


@pytest.fixture
def held(listening: TableChanges) -> HeldReads:
    return HeldReads(listening, max_age_s=60)


@pytest.fixture
async def pairs(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path: Path, held: HeldReads) -> AsyncIterator[MatchingEnv]:
    async for environment in matching_env(pool, tmp_path, kafka_bootstrap, held):
        yield environment


async def test_a_held_pair_is_still_shown_only_to_whom_may_see_it(pairs: MatchingEnv, listening: TableChanges) -> None:
    """The row is held whoever asks; who may see it is checked at each read."""
    env = pairs
    programme = await env.programme()
    wave = await env.wave(programme, "DE")
    mentee, mentor = await env.mentee(wave), await env.mentor(wave)
    await env.synced()
    pair_id = (await env.run(wave))["pairs"][0]["pair_id"]
    await settled(listening)
    path = f"/v1/pairs/{pair_id}"

    async def status(headers: dict[str, str]) -> int:
        return (await env.client.get(path, headers=headers)).status_code

    for _ in range(2):  # read, then held
        assert await status(env.auth("hr_admin")) == 200
        assert await status(env.auth("regional_committee", countries=["DE"])) == 200
        assert await status(env.auth("regional_committee", countries=["FR"])) == 404
        assert await status(env.as_participant(mentee)) == 200
        assert await status(env.as_participant(mentor)) == 200
        assert await status(env.as_participant(str(uuid.uuid4()))) == 404
        assert await status(env.auth("hr_admin", org="org-b")) == 404

    # Held: a change nobody announces is not seen...
    async with env.pool.acquire() as conn:
        await conn.execute(f"SET {ANNOUNCES} = 'on'")
        try:
            await conn.execute(
                f"UPDATE {env.schema}.pairs SET doc = jsonb_set(doc, '{{score}}', '0.5') WHERE pair_id = $1",
                uuid.UUID(pair_id),
            )
        finally:
            await conn.execute(f"RESET {ANNOUNCES}")
    assert (await env.pair(pair_id))["score"] != 0.5
    # ...and the pair's own commands are heard (here their connections notify).
    accepted = await env.client.post(f"{path}:accept", headers=env.as_participant(mentee))
    assert accepted.status_code == 200, accepted.text
    deadline = asyncio.get_running_loop().time() + 10
    while (await env.pair(pair_id))["version"] != accepted.json()["version"]:
        assert asyncio.get_running_loop().time() < deadline, "the acceptance never showed"
        await asyncio.sleep(0.02)


async def test_a_pair_not_found_is_not_held(pairs: MatchingEnv, held: HeldReads) -> None:
    for _ in range(2):
        missing = await pairs.client.get(f"/v1/pairs/{uuid.uuid4()}", headers=pairs.auth("hr_admin"))
        assert missing.status_code == 404
    assert len(held) == 0
