"""``binome up`` supervises its embedded broker and PostgreSQL.

Faults are injected from outside, as an operator (or the OOM killer) would:
``kill -9`` of a child, ``kill -9`` of ``binome up`` itself. The platform must
say what is down (``/readyz`` 503 naming it; 503 problem+json with
``Retry-After`` on the API), restart the child by itself, and carry on: an
event written after the recovery reaches another service's read model.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from tests.support.platform_process import PlatformProcess, auth, eventually

#: Two HTTP workers (``binome up --workers 2``): what is down must show
#: whichever worker answers, and the workers die with ``binome up`` too.
WORKERS = {"BINOME_WORKERS": "2"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    with PlatformProcess.start(tmp_path_factory.mktemp("platform"), env=WORKERS) as running:
        yield running


def _readyz(platform: PlatformProcess, prefix: str = "") -> tuple[int, dict]:
    response = platform.http.get(f"{prefix}/readyz")
    return response.status_code, response.json()


def _failing(platform: PlatformProcess, component: str, prefix: str = "") -> bool:
    status, body = _readyz(platform, prefix)
    return status == 503 and component in body.get("failed", [])


def _programme_reaches_insights(platform: PlatformProcess, token: str) -> None:
    """A programme created through enrollment's API shows in insights' rollout read model."""
    created = platform.http.post(
        "/enrollment/v1/programmes", json={"name": "After the fault", "mode": "reverse"}, headers=auth(token)
    )
    assert created.status_code == 201, created.text
    rollout = f"/insights/v1/programmes/{created.json()['programme_id']}/rollout"
    try:
        eventually(lambda: platform.http.get(rollout, headers=auth(token)).status_code == 200, what="rollout of the new programme")
    except AssertionError as exc:
        # Which consumers got their partitions back, and applied again, after the fault.
        said = [line for line in platform.log_lines() if "partitions" in line or "first batch" in line]
        raise AssertionError(f"{exc}; the consumers' assignments:\n" + "\n".join(said[-40:])) from None


def _kill_broker_and_hold_its_port(platform: PlatformProcess) -> tuple[psutil.Process, socket.socket]:
    """``kill -9`` the broker and keep its port busy: it cannot come back until released.

    A listening socket that never answers, as a stray process would hold the
    port: the outage lasts as long as the test wants, whatever the restart's
    speed. Retried if the supervisor restarted the broker in between.
    """
    for _ in range(5):
        broker = platform.child("tansu")
        port = int(re.search(r"127\.0\.0\.1:(\d+)", " ".join(broker.cmdline())).group(1))
        broker.send_signal(signal.SIGKILL)
        broker.wait(10)
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", port))
            holder.listen()
            return broker, holder
        except OSError:
            holder.close()  # the supervisor was quicker: kill the new broker too
    raise AssertionError("could not hold the broker's port")


def test_a_killed_broker_is_restarted_and_events_flow_again(platform: PlatformProcess) -> None:
    token = platform.token("hr-broker", "org-broker", ["hr_admin"])
    _programme_reaches_insights(platform, token)  # the pipeline works before the fault
    before = platform.metric("binome_embedded_restarts_total", component="broker") or 0

    kafka_lines_before = _kafka_client_lines(platform)
    broker, holder = _kill_broker_and_hold_its_port(platform)
    try:
        eventually(lambda: _failing(platform, "broker"), timeout=20, what="/readyz 503 naming the broker")
        eventually(lambda: _failing(platform, "broker", "/enrollment"), timeout=20, what="a service's /readyz too")
        # Restarts are tried (and fail while the port is held), with backoff.
        eventually(lambda: platform.metric("binome_embedded_restarts_total", component="broker") >= before + 2, timeout=20)
    finally:
        holder.close()

    eventually(lambda: _readyz(platform)[0] == 200, what="/readyz 200 again")
    assert platform.child("tansu").pid != broker.pid  # a new broker, started by binome up
    # The Kafka clients retried many times a second through the outage; their
    # lines are cut to about one per failure period (and a summary).
    assert _kafka_client_lines(platform) - kafka_lines_before <= 20
    _programme_reaches_insights(platform, token)


def _kafka_client_lines(platform: PlatformProcess) -> int:
    return sum('"logger": "aiokafka' in line for line in platform.log_lines())


def _kill_database_and_lock_its_data(platform: PlatformProcess) -> tuple[psutil.Process, Path]:
    """``kill -9`` PostgreSQL and make its data directory unreadable: it cannot
    come back (as with a disk gone) until the test gives the rights back."""
    postgres = platform.child("postgres -D")
    pgdata = platform.data_dir / "postgres"
    postgres.send_signal(signal.SIGKILL)
    pgdata.chmod(0)
    postgres.wait(10)
    return postgres, pgdata


def test_a_killed_database_answers_503_then_recovers(platform: PlatformProcess) -> None:
    token = platform.token("hr-db", "org-db", ["hr_admin"])
    programmes = "/enrollment/v1/programmes"
    assert platform.http.get(programmes, headers=auth(token)).status_code == 200
    assert asyncio.run(_select_one(platform.database_url)) == 1  # how tests reach it from outside
    postgres, pgdata = _kill_database_and_lock_its_data(platform)
    try:
        def outage_answer():
            response = platform.http.get(programmes, headers=auth(token))
            return response if response.status_code == 503 else None

        response = eventually(outage_answer, timeout=20, what="503 on a /v1 route")
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["status"] == 503
        # A command (through the idempotency and audit middlewares) too.
        created = platform.http.post(programmes, json={"name": "During", "mode": "reverse"}, headers=auth(token))
        assert created.status_code == 503, created.text
        assert created.headers["retry-after"]
        eventually(lambda: _failing(platform, "database"), timeout=20, what="/readyz 503 naming the database")
        eventually(lambda: _failing(platform, "database", "/insights"), timeout=20)
    finally:
        pgdata.chmod(0o700)

    eventually(lambda: _readyz(platform)[0] == 200, what="/readyz 200 again")
    eventually(lambda: _new_postgres(platform, postgres), timeout=20, what="a new PostgreSQL under binome up")
    assert platform.metric("binome_embedded_restarts_total", component="database") >= 1
    eventually(lambda: platform.http.get(programmes, headers=auth(token)).status_code == 200, timeout=30)
    _programme_reaches_insights(platform, token)


def _new_postgres(platform: PlatformProcess, killed: psutil.Process) -> bool:
    """A PostgreSQL other than the killed one runs under ``binome up`` (the
    process list is read while the restart may still be settling)."""
    try:
        return platform.child("postgres -D").pid != killed.pid
    except LookupError:
        return False


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def test_no_child_survives_a_kill_9_of_binome_up(tmp_path) -> None:
    running = PlatformProcess.create(tmp_path, env=WORKERS)
    running.launch()
    try:
        children = running.children()
        assert any("tansu" in " ".join(c.cmdline()) for c in children)
        assert any("postgres" in c.name() for c in children)
        assert sum("libs.runtime.worker" in " ".join(c.cmdline()) for c in children) == 2
    except BaseException:
        running.stop()
        raise
    running.kill()

    def all_gone() -> bool:
        return not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    eventually(all_gone, timeout=15, what="every child of binome up gone")

    # A restart over the same data dir (stale postmaster.pid, no server) finds
    # every fact, and a clean stop after it leaves nothing running.
    token = running.token("hr-restart", "org-restart", ["hr_admin"])
    with PlatformProcess.start(tmp_path, env=WORKERS) as again:
        created = again.http.post("/enrollment/v1/programmes", json={"name": "Kept", "mode": "reverse"}, headers=auth(token))
        assert created.status_code == 201, created.text
    eventually(lambda: not _processes_over(tmp_path), timeout=15, what="nothing left after a clean stop")
    with PlatformProcess.start(tmp_path) as third:
        listed = third.http.get("/enrollment/v1/programmes", headers=auth(token)).json()
        assert "Kept" in {p["name"] for p in listed["items"]}


def _processes_over(directory) -> list[psutil.Process]:
    """Live processes whose command line names ``directory`` (the broker has none; PostgreSQL does)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and str(directory) in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found
