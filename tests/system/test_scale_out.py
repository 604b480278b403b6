"""Scale-out for real: two instances of each service (``binome up --service
NAME`` twice) against one PostgreSQL server and one broker.

Only one relay per service publishes at a time (an advisory lock elects it);
after a ``kill -9`` of the active one the standby takes over within seconds;
the two instances of a consumer split the partitions of its group; nothing is
lost and nothing is applied twice.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from libs.embedded.broker import EmbeddedBroker
from tests.support.databases import fresh_database
from tests.support.enrollment import mentee, programme_body, wave_body
from tests.support.platform_process import PlatformProcess, auth, eventually, eventually_equal

pytestmark = pytest.mark.system

GROUP = "matching-candidate-pool"


@pytest.fixture
async def shared_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own on the test server, for every instance."""
    async with fresh_database(database_url, "scale") as url:
        yield url


async def relay_holder(conn: asyncpg.Connection, service: str) -> int | None:
    """The pid of the ``binome up`` process whose relay holds the service's lock."""
    name = await conn.fetchval(
        """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1""",
        f"binome relay {service} pid %",
    )
    return None if name is None else int(name.rsplit(" ", 1)[1])


async def group_members(bootstrap: str) -> list[str]:
    """The member ids of the candidate pool's consumer group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([GROUP])
    finally:
        await admin.close()
    (group,) = response.groups  # (error, id, state, protocol type, protocol, members)
    return [member[0] for member in group[5]]


async def test_two_instances_of_each_service_share_the_work_and_survive_a_kill(
    tmp_path: Path, shared_database: str, own_broker: EmbeddedBroker
) -> None:
    env = {
        "BINOME_DATABASE_URL": shared_database,
        "BINOME_KAFKA_BOOTSTRAP": own_broker.bootstrap,
        "BINOME_VAULT_MASTER_KEYS": orjson.dumps({"global": base64.b64encode(os.urandom(32)).decode()}).decode(),
    }
    # One data directory (the dev signing key every instance verifies with).
    instances = {
        (service, n): PlatformProcess.create(tmp_path, env=env, args=("--service", service))
        for service in ("enrollment", "matching")
        for n in (1, 2)
    }
    try:
        for instance in instances.values():
            instance.launch()
        organisation = f"org-{uuid.uuid4().hex[:6]}"
        front = {n: instances[("enrollment", n)] for n in (1, 2)}
        headers = auth(front[1].token("hr-1", organisation, ["hr_admin"]))
        with front[1].http as http:
            programme = http.post("/enrollment/v1/programmes", json=programme_body(), headers=headers).json()
            wave = http.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", json=wave_body("FR"), headers=headers)
            wave_id = wave.json()["wave_id"]

        def enrol(instance: PlatformProcess, n: int) -> None:
            with instance.http as http:
                for _ in range(n):
                    body = mentee(f"E{uuid.uuid4().hex[:8]}")
                    response = http.post(f"/enrollment/v1/waves/{wave_id}/participants", json=body, headers=headers)
                    assert response.status_code == 201, response.text

        conn = await asyncpg.connect(shared_database)
        try:
            enrol(front[1], 10)
            enrol(front[2], 10)
            await eventually_equal(lambda: candidate_count(conn, organisation), 20)
            # The candidate pool's group has two members, which split the
            # enrollment topic's three partitions.
            assert len(await group_members(own_broker.bootstrap)) == 2
            readers = [instances[("matching", n)] for n in (1, 2)]
            split = eventually(
                lambda: sorted(r.metric("binome_consumer_partitions_assigned", consumer=GROUP) for r in readers),
                what="partitions split",
            )
            assert split == [1, 2], split

            active = await relay_holder(conn, "enrollment")
            assert active in {front[1].pid, front[2].pid}
            killed = next(n for n in (1, 2) if front[n].pid == active)
            survivor = front[3 - killed]
            front[killed].kill()
            # The standby takes the lock within a few seconds of the kill.
            await eventually_equal(lambda: relay_holder(conn, "enrollment"), survivor.pid, timeout=15)

            enrol(survivor, 10)
            await eventually_equal(lambda: candidate_count(conn, organisation), 30)
            # Each enrolment event applied once by the candidate pool, none parked.
            applied = await conn.fetchval(
                """SELECT count(*) FROM matching.applied_events a JOIN enrollment.events e ON e.event_id = a.event_id
                   WHERE a.consumer = $1 AND a.outcome = 'applied' AND e.type LIKE '%ParticipantEnrolled%'""",
                GROUP,
            )
            assert applied == 30
            assert await conn.fetchval("SELECT count(*) FROM enrollment.outbox") == 0
        finally:
            await conn.close()
    finally:
        for instance in instances.values():
            instance.stop()


async def candidate_count(conn: asyncpg.Connection, organisation: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM matching.candidates WHERE organisation = $1", organisation)
