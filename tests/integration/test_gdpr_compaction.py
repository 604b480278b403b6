"""Erasure completed on disk (libs/gdpr/compaction.py), on a real PostgreSQL:
a service's compactor waits until its consumers applied the erasure and no
snapshot still sees the erased rows, then rewrites its read tables (and, for
the erasing service, the vault's keys) into new files, and only then does the
erasure read ``completed``. The bytes themselves are looked for on disk by
tests/system/test_gdpr_erasure.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from libs.database import create_pool
from libs.eventstore.migrations import migrate
from libs.gdpr.compaction import Compactor
from libs.gdpr.masters import MasterKeys
from libs.gdpr.vault import KeyVault, migrate_vault
from tests.support.databases import fresh_database

CONSUMER = "people"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[str]:
    """A database of its own: the compactor waits for every older snapshot
    of its database, and other tests' transactions must not be among them."""
    async with fresh_database(database_url, "compaction") as url:
        yield url


@pytest.fixture
async def own(database: str) -> AsyncIterator[asyncpg.Pool]:
    own = await create_pool(database)
    try:
        yield own
    finally:
        await own.close()


@pytest.fixture
async def vault(own: asyncpg.Pool, tmp_path) -> KeyVault:
    async with own.acquire() as conn:
        await migrate_vault(conn, "binome_vault")
    return KeyVault(own, "binome_vault", MasterKeys(keys={}, dev_dir=tmp_path))


@pytest.fixture
async def service(own: asyncpg.Pool) -> str:
    """A service schema: the event store's tables and one read table of notes."""
    async with own.acquire() as conn:
        await migrate(conn, "people_service")
        await conn.execute("CREATE TABLE people_service.notes (participant_id uuid, note text)")
    return "people_service"


async def filenode(pool: asyncpg.Pool, table: str) -> int:
    return await pool.fetchval("SELECT pg_relation_filenode($1::regclass)", table)


async def erase(pool: asyncpg.Pool, vault: KeyVault, service: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A participant with a key and a note, erased; (participant id, event id)."""
    pid, event_id = uuid.uuid4(), uuid.uuid4()
    await vault.key_for(pid, [pid], "FR")
    await pool.execute(f"INSERT INTO {service}.notes VALUES ($1, 'a note')", pid)
    await vault.erase(pid, event_id)
    return pid, event_id


async def apply_erasure(pool: asyncpg.Pool, service: str, pid: uuid.UUID, event_id: uuid.UUID) -> None:
    """What the service's consumer does with ParticipantErased, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"DELETE FROM {service}.notes WHERE participant_id = $1", pid)
        await conn.execute(
            f"INSERT INTO {service}.applied_events (consumer, event_id) VALUES ($1, $2)", CONSUMER, event_id
        )


async def test_an_erasure_completes_once_its_consumers_applied_it_and_the_files_are_rewritten(
    own: asyncpg.Pool, vault: KeyVault, service: str
) -> None:
    compactor = Compactor(service, own, vault, [CONSUMER], rewrites_vault=True)
    await vault.register_compactor(service)
    pid, event_id = await erase(own, vault, service)
    before = {t: await filenode(own, t) for t in (f"{service}.notes", *vault.key_tables)}

    assert await compactor.compact_pending() == []  # the consumer has not scrubbed its rows yet
    assert (await vault.erasure_status(pid))["status"] == "pending"

    await apply_erasure(own, service, pid, event_id)
    assert await compactor.compact_pending() == [pid]
    after = {t: await filenode(own, t) for t in before}
    assert all(after[t] != before[t] for t in before)  # new files: the old ones, dead rows and all, are gone
    assert await filenode(own, f"{service}.events") is not None
    status = await vault.erasure_status(pid)
    assert status["status"] == "completed" and status["completed_at"] is not None
    assert await compactor.compact_pending() == []  # done once


async def test_an_erasure_waits_for_every_registered_service(
    own: asyncpg.Pool, vault: KeyVault, service: str
) -> None:
    await vault.register_compactor(service)
    await vault.register_compactor("another_service")
    pid, event_id = await erase(own, vault, service)
    await apply_erasure(own, service, pid, event_id)
    assert await Compactor(service, own, vault, [CONSUMER]).compact_pending() == [pid]
    assert (await vault.erasure_status(pid))["status"] == "pending"
    await vault.mark_compacted("another_service", [pid])
    assert (await vault.erasure_status(pid))["status"] == "completed"


async def test_a_snapshot_that_still_sees_the_erased_rows_holds_the_rewrite_back(
    own: asyncpg.Pool, vault: KeyVault, service: str, database: str
) -> None:
    """VACUUM FULL copies rows some snapshot may still see: rewriting then
    would keep them, so the compactor waits and tries again."""
    compactor = Compactor(service, own, vault, [CONSUMER], horizon_timeout_s=0.5)
    await vault.register_compactor(service)
    pid, event_id = await erase(own, vault, service)
    reader = await asyncpg.connect(database)
    try:
        async with reader.transaction(isolation="repeatable_read"):
            await reader.fetchval(f"SELECT count(*) FROM {service}.notes")  # its snapshot sees the note
            await apply_erasure(own, service, pid, event_id)
            before = await filenode(own, f"{service}.notes")
            assert await compactor.compact_pending() == []
            assert await filenode(own, f"{service}.notes") == before
    finally:
        await reader.close()
    assert await compactor.compact_pending() == [pid]
