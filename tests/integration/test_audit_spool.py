"""The audit spool on a real PostgreSQL (libs/audit/spool.py): records wait in
a local file, not in the database, until their batch is shipped; a file left
by a killed process is shipped by another, once; a record PostgreSQL refuses
never takes its batch with it; an outage loses nothing; a record the spool
cannot take is written directly."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from libs.audit.spool import AuditSpool
from libs.audit.trail import AuditRecord, AuditTrail

ROOT = Path(__file__).resolve().parents[2]


def audit_record(i: int, **changes: object) -> AuditRecord:
    fields = dict(action="GET /v1/things/{id}", status=200, object={"id": str(i)}, subject=f"user-{i}",
                  organisation="acme", roles=("hr_admin",), correlation_id=f"s-{i}")
    return AuditRecord(**{**fields, **changes})  # type: ignore[arg-type]


async def subjects(pool: asyncpg.Pool, schema: str) -> list[str]:
    return sorted(r["subject"] for r in await pool.fetch(f"SELECT subject FROM {schema}.audit_log"))


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


def spooled(directory: Path) -> int:
    """Records in the spool's files, not yet shipped."""
    return sum(len(path.read_bytes().splitlines()) for path in spool_files(directory))


async def test_records_wait_in_the_spool_until_their_batch_is_shipped(
    pool: asyncpg.Pool, schema: str, tmp_path: Path
) -> None:
    spool = AuditSpool(tmp_path, pool)
    trail = AuditTrail(pool, schema, spool=spool)
    for i in range(3):
        await trail.record(audit_record(i))
    assert await subjects(pool, schema) == []  # no round trip per record
    assert spooled(tmp_path) == 3

    assert await spool.ship() == 3
    rows = await pool.fetch(f"SELECT * FROM {schema}.audit_log ORDER BY id")
    assert [r["subject"] for r in rows] == ["user-0", "user-1", "user-2"]
    assert all(r["record_id"] and r["at"] is not None for r in rows)
    assert rows[0]["roles"] == ["hr_admin"] and rows[0]["decision"] == "allowed"
    assert spooled(tmp_path) == 0  # a file shipped is emptied for the next records
    await spool.close()
    assert spool_files(tmp_path) == []  # and deleted when the spool closes


async def test_the_shipper_ships_within_its_linger(pool: asyncpg.Pool, schema: str, tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path, pool, linger_s=0.05)
    spool.start()
    try:
        trail = AuditTrail(pool, schema, spool=spool)
        await trail.record(audit_record(1))
        await trail.record(audit_record(2))
        for _ in range(100):
            if await subjects(pool, schema) == ["user-1", "user-2"]:
                break
            await asyncio.sleep(0.05)
        assert await subjects(pool, schema) == ["user-1", "user-2"]
    finally:
        await spool.close()


async def test_the_trail_read_ships_this_process_records_first(pool: asyncpg.Pool, schema: str, tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path, pool, linger_s=60)
    trail = AuditTrail(pool, schema, spool=spool)
    await trail.record(audit_record(5))
    found = await trail.query("acme")
    assert [r["subject"] for r in found] == ["user-5"]
    await spool.close()


CHILD = """
import sys, time
from pathlib import Path
from libs.audit.spool import AuditSpool
from libs.audit.trail import AuditRecord
spool = AuditSpool(Path(sys.argv[1]), None)
for i in range(3):
    spool.append(sys.argv[2], AuditRecord(action="GET /v1/x", status=200, object={}, subject=f"child-{i}",
                                          organisation="acme"))
print("spooled", flush=True)
time.sleep(600)
"""


async def test_a_killed_process_files_are_shipped_by_another_once(
    pool: asyncpg.Pool, schema: str, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), schema], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "spooled"
        survivor = AuditSpool(tmp_path, pool)
        assert await survivor.sweep() == 0  # its writer is alive: not taken
        assert spooled(tmp_path) == 3
        (left,) = [path for path in spool_files(tmp_path) if path.stat().st_size]
        copy = tmp_path.parent / "copy.jsonl"
        shutil.copy(left, copy)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert await survivor.sweep() == 3  # its lock died with it
    assert await subjects(pool, schema) == ["child-0", "child-1", "child-2"]
    assert spool_files(tmp_path) == []

    # Its owner died after the commit and before the deletion: shipped again, recorded once.
    shutil.move(copy, tmp_path / "999999-00000001.jsonl")
    assert await survivor.sweep() == 3
    assert await subjects(pool, schema) == ["child-0", "child-1", "child-2"]


async def test_a_record_postgresql_refuses_does_not_take_its_batch_with_it(
    pool: asyncpg.Pool, schema: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = AuditSpool(tmp_path, pool)
    spool.append(schema, audit_record(1))
    spool.append(schema, audit_record(2, object={"id": "a\x00b"}))  # jsonb refuses \u0000
    spool.append(schema, audit_record(3))
    with caplog.at_level(logging.ERROR, logger="libs.audit.spool"):
        await spool.ship()
    assert await subjects(pool, schema) == ["user-1", "user-3"]
    assert "audit record not written: GET /v1/things/{id} allowed" in caplog.text  # logged, not silent
    assert spooled(tmp_path) == 0


async def test_an_outage_loses_nothing(pool: asyncpg.Pool, schema: str, tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path, pool)
    spool.append(schema, audit_record(1))
    await pool.execute(f"ALTER TABLE {schema}.audit_log RENAME TO audit_log_away")  # the insert fails, not for its data
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await spool.ship()
        assert spooled(tmp_path) == 1
        spool.append(schema, audit_record(2))  # meanwhile
    finally:
        await pool.execute(f"ALTER TABLE {schema}.audit_log_away RENAME TO audit_log")
    assert await spool.ship() == 2
    assert await subjects(pool, schema) == ["user-1", "user-2"]
    assert spooled(tmp_path) == 0


async def test_a_record_the_spool_cannot_take_is_written_directly(
    pool: asyncpg.Pool, schema: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    spool = AuditSpool(directory, pool)
    directory.rmdir()  # the spool file cannot be created (as on a full or read-only disk)
    trail = AuditTrail(pool, schema, spool=spool)
    await trail.record(audit_record(4))
    assert await subjects(pool, schema) == ["user-4"]


async def test_the_shipper_tries_again_after_an_outage(pool: asyncpg.Pool, schema: str, tmp_path: Path) -> None:
    await pool.execute(f"ALTER TABLE {schema}.audit_log RENAME TO audit_log_away")
    spool = AuditSpool(tmp_path, pool, linger_s=0.01)
    spool.start()
    try:
        spool.append(schema, audit_record(1))
        await asyncio.sleep(0.3)  # a failed round or two
        assert spooled(tmp_path) == 1
        await pool.execute(f"ALTER TABLE {schema}.audit_log_away RENAME TO audit_log")
        for _ in range(100):  # the next try, within the first backoffs
            if await subjects(pool, schema) == ["user-1"]:
                break
            await asyncio.sleep(0.1)
        assert await subjects(pool, schema) == ["user-1"]
        assert spooled(tmp_path) == 0
    finally:
        await spool.close()
