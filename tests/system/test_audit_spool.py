"""The audit trail of ``binome up --workers 2`` loses no record when a worker
is killed with ``kill -9``, nor when the platform stops (libs/audit/spool.py).

A request's record is spooled to a file of its worker and shipped in a batch
after ``BINOME_AUDIT_LINGER_S`` (30 s here, so that the records are still in
the spool when the workers die): the test first sees that they are not in
the database yet, kills every worker that answered, and finds each record in
the trail once another process has shipped the dead workers' files.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.platform_process import PlatformProcess, auth, eventually
from tests.system.test_workers import at_once, worker_of, worker_pids

LINGER_S = 30
REQUESTS = 20


def platform_env() -> dict[str, str]:
    return {"BINOME_WORKERS": "2", "BINOME_AUDIT_LINGER_S": str(LINGER_S), "BINOME_MAX_CONCURRENT_REQUESTS": "100"}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[PlatformProcess]:
    with PlatformProcess.start(tmp_path, env=platform_env()) as running:
        yield running


def audited(platform: PlatformProcess, correlation_ids: list[str]) -> list[str]:
    rows = platform.sql(
        "SELECT correlation_id FROM enrollment.audit_log WHERE correlation_id = ANY($1::text[])", correlation_ids
    )
    return sorted(r["correlation_id"] for r in rows)


def spooled_requests(platform: PlatformProcess) -> tuple[list[str], set[int]]:
    """``REQUESTS`` audited reads at once; their correlation ids and the workers that answered them."""
    hr = platform.token("hr-spool", "org-spool", ["hr_admin"])
    sent: list[str] = []

    def read(client):  # type: ignore[no-untyped-def]
        correlation_id = f"spool-{uuid.uuid4()}"
        sent.append(correlation_id)
        return client.get("/enrollment/v1/programmes", headers={**auth(hr), "Correlation-Id": correlation_id})

    responses = at_once(platform, REQUESTS, read)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    return sorted(sent), {worker_of(r) for r in responses}


def spool_files(platform: PlatformProcess) -> list[Path]:
    return sorted((platform.data_dir / "audit-spool").glob("*.jsonl"))


def test_the_records_of_killed_workers_are_shipped_by_the_others(platform: PlatformProcess) -> None:
    sent, answered_by = spooled_requests(platform)
    assert audited(platform, sent) == []  # in the spool, not yet in the database
    assert {int(path.name.split("-")[0]) for path in spool_files(platform)} >= answered_by

    assert answered_by <= worker_pids(platform)
    for pid in answered_by:  # every record of these requests dies with its worker's memory
        psutil.Process(pid).send_signal(signal.SIGKILL)

    # The replacements sweep at start, the platform every two seconds: well before any linger.
    eventually(lambda: audited(platform, sent) == sent, timeout=60, what="every record in the trail")
    assert platform.sql(
        "SELECT count(*) AS n FROM enrollment.audit_log WHERE correlation_id = ANY($1::text[])", sent
    )[0]["n"] == REQUESTS  # once each
    eventually(
        lambda: not any(int(path.name.split("-")[0]) in answered_by for path in spool_files(platform)),
        timeout=10, what="the dead workers' files gone",
    )
    assert any("of a process that is gone shipped" in line for line in platform.log_lines())


def test_ctrl_c_ships_what_is_spooled(platform: PlatformProcess) -> None:
    sent, _ = spooled_requests(platform)
    assert audited(platform, sent) == []
    assert platform.stop() == 0
    assert spool_files(platform) == []  # shipped, not left for the next start
    # The embedded database stopped with the platform: start it again to look.
    platform.launch()
    assert audited(platform, sent) == sent
