"""``binome up``'s platform: services served over the real stack, restarted
with every fact kept, and read models rebuilt from the log."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from libs.auth.devkeys import mint
from libs.runtime.platform import Platform
from libs.runtime.replay import replay
from libs.settings import Settings
from tests.support import probe_service
from tests.support.kafka import wait_for

pytestmark = pytest.mark.integration


async def tally(pool: asyncpg.Pool, n: int):
    rows = await pool.fetch("SELECT value, times FROM platform.probe_tally ORDER BY value")
    return rows if len(rows) >= n else None


async def partition_counts(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(["binome.platform.events", "binome.deadletter"])
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


@pytest.fixture
async def clean_platform_schema(pool: asyncpg.Pool):
    await pool.execute("DROP SCHEMA IF EXISTS platform CASCADE")
    yield
    await pool.execute("DROP SCHEMA IF EXISTS platform CASCADE")


async def test_platform_serves_restarts_with_every_fact_and_rebuilds(
    database_url: str, pool: asyncpg.Pool, tmp_path, clean_platform_schema
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    service = probe_service.definition(migrations)
    # No broker given: the platform starts its own embedded one, each time empty.
    settings = Settings(
        database_url=database_url, kafka_bootstrap=None, data_dir=tmp_path, consumer_session_timeout_ms=1000,
        kafka_topic_partitions=4,
    )
    token = mint("hr-1", "org-1", ["hr_admin"], [], data_dir=tmp_path)
    auth = {"Authorization": f"Bearer {token}"}

    first = await Platform.start(settings, [service])
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(first.asgi_app()), base_url="http://binome") as client:
            for value in range(5):
                response = await client.post("/platform/v1/probes", json={"value": value}, headers=auth)
                assert response.status_code == 201, response.text
            bad = await client.post("/platform/v1/probes", json={"value": "x"}, headers=auth)
            assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
            assert (await client.post("/platform/v1/probes", json={"value": 1})).status_code == 401
            await wait_for(lambda: tally(pool, 5))
            listed = (await client.get("/platform/v1/probes", headers=auth)).json()["probes"]
            assert [p["value"] for p in listed] == [0, 1, 2, 3, 4]
            assert (await client.get("/v1/services")).json()["services"][0]["name"] == "platform"
            assert "binome_events_applied_total" in (await client.get("/metrics")).text
        # The relay and the consumer created their topics as the settings say.
        assert await partition_counts(first.infrastructure.bootstrap) == {
            "binome.platform.events": 4, "binome.deadletter": 4
        }
    finally:
        await first.shutdown()

    second = await Platform.start(settings, [service])  # a new, empty broker; the same database
    try:
        assert second.infrastructure.bootstrap != first.infrastructure.bootstrap
        async with httpx.AsyncClient(transport=httpx.ASGITransport(second.asgi_app()), base_url="http://binome") as client:
            response = await client.post("/platform/v1/probes", json={"value": 5}, headers=auth)
            assert response.status_code == 201
            rows = await wait_for(lambda: tally(pool, 6))
            assert [r["value"] for r in rows] == [0, 1, 2, 3, 4, 5]
            assert {r["times"] for r in rows} == {1}  # the re-published log applied nothing twice

            done = await replay(pool, settings, [service], "platform")
            assert done["probe-tally"].read == 6
            assert done["probe-tally"].applied + done["probe-tally"].skipped == 6
            assert await pool.fetchval("SELECT count(*) FROM platform.outbox") == 0  # nothing re-published
            rows = await wait_for(lambda: tally(pool, 6))
            assert [r["value"] for r in rows] == [0, 1, 2, 3, 4, 5] and {r["times"] for r in rows} == {1}
    finally:
        await second.shutdown()
