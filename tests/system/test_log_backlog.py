"""Lag against the log, and start-up that costs what is pending, on the
assembled platform (``binome up`` as a subprocess, faults from outside).

Reported: a projection blocked for 60 s left ``binome_consumer_lag`` at 0
(the broker's view) while the real backlog grew; every start re-published
the whole history.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.enrollment import mentee, mentor, programme_body, wave_body
from tests.support.platform_process import PlatformProcess, auth, eventually, eventually_equal

CONSUMER = {"consumer": "matching-candidate-pool", "source": "enrollment"}
FAST = {"BINOME_BACKLOG_INTERVAL_S": "0.5"}


def open_wave(platform: PlatformProcess, organisation: str) -> tuple[dict[str, str], str]:
    headers = auth(platform.token("hr-1", organisation, ["hr_admin"]))
    programme = platform.post("/enrollment/v1/programmes", programme_body(), headers)
    wave = platform.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", wave_body("FR"), headers)
    return headers, wave["wave_id"]


def enrol(platform: PlatformProcess, headers: dict[str, str], wave_id: str, n: int) -> None:
    for _ in range(n):
        ref = f"E{uuid.uuid4().hex[:8]}"
        body = mentee(ref) if len(ref) % 2 else mentor(ref)
        platform.post(f"/enrollment/v1/waves/{wave_id}/participants", body, headers)


@contextlib.asynccontextmanager
async def table_locked(platform: PlatformProcess, table: str) -> AsyncIterator[None]:
    """A read model's table locked from outside (as an operator's long
    statement would) until the block ends: its consumer blocks on it."""
    blocker = await asyncpg.connect(platform.database_url)
    locked = blocker.transaction()
    await locked.start()
    try:
        await blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        # The block may have killed the platform, and its PostgreSQL with it.
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await locked.rollback()
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await blocker.close()


async def candidates(platform: PlatformProcess, organisation: str) -> int:
    rows = await platform.fetch("SELECT count(*) FROM matching.candidates WHERE organisation = $1", organisation)
    return rows[0][0]


async def test_a_blocked_consumer_shows_a_backlog_that_grows_by_the_second(tmp_path: Path) -> None:
    with PlatformProcess.start(tmp_path, env=FAST) as platform:
        organisation = f"org-{uuid.uuid4().hex[:6]}"
        headers, wave_id = open_wave(platform, organisation)
        eventually(lambda: platform.metric("binome_consumer_backlog_events", **CONSUMER) == 0, what="caught up")

        async with table_locked(platform, "matching.candidates"):
            enrol(platform, headers, wave_id, 6)
            backlog = eventually(
                lambda: (v := platform.metric("binome_consumer_backlog_events", **CONSUMER)) and v >= 6 and v,
                what="backlog of the blocked consumer",
            )
            first_age = platform.metric("binome_consumer_backlog_seconds", **CONSUMER)
            enrol(platform, headers, wave_id, 3)
            await asyncio.sleep(2)
            assert platform.metric("binome_consumer_backlog_events", **CONSUMER) >= backlog + 3
            assert platform.metric("binome_consumer_backlog_seconds", **CONSUMER) >= first_age + 1.5  # ageing

        eventually(lambda: platform.metric("binome_consumer_backlog_events", **CONSUMER) == 0, what="backlog drained")
        assert platform.metric("binome_consumer_backlog_seconds", **CONSUMER) == 0
        assert await candidates(platform, organisation) == 9


async def test_a_restart_publishes_only_what_consumers_had_not_applied(tmp_path: Path) -> None:
    organisation = f"org-{uuid.uuid4().hex[:6]}"
    with PlatformProcess.start(tmp_path, env=FAST) as platform:
        headers, wave_id = open_wave(platform, organisation)
        enrol(platform, headers, wave_id, 20)
        await caught_up(platform, organisation, 20)
        stored = await events_in_store(platform)

    # A clean restart of a caught-up platform: the new, empty broker gets nothing.
    platform = PlatformProcess.create(tmp_path, env=FAST)
    platform.launch()
    try:
        assert platform.metric("binome_events_republished_total") == 0
        # Matching's read model is blocked while 5 more people enrol; the
        # platform then dies with those events published but not applied.
        async with table_locked(platform, "matching.candidates"):
            enrol(platform, headers, wave_id, 5)
            eventually(lambda: (platform.metric("binome_consumer_backlog_events", **CONSUMER) or 0) >= 5, what="backlog")
            platform.kill()
    finally:
        platform.stop()

    platform = PlatformProcess.create(tmp_path, env=FAST)
    platform.launch()
    try:
        # Only what the slowest consumer had not applied, not the whole log.
        republished = platform.metric("binome_events_republished_total", service="enrollment")
        assert 5 <= republished < stored
        eventually(lambda: platform.metric("binome_consumer_backlog_events", **CONSUMER) == 0, what="caught up")
        assert await candidates(platform, organisation) == 25
    finally:
        platform.stop()


async def caught_up(platform: PlatformProcess, organisation: str, enrolled: int) -> None:
    """Wait until every consumer of every log has applied everything: the
    read model holds the enrolments, then (after a few refreshes of the
    gauges, so that none is older than the writes) the summed backlog is 0."""
    await eventually_equal(lambda: candidates(platform, organisation), enrolled)
    await asyncio.sleep(3 * float(FAST["BINOME_BACKLOG_INTERVAL_S"]))
    eventually(lambda: platform.metric("binome_consumer_backlog_events") == 0, what="every consumer caught up")


async def events_in_store(platform: PlatformProcess) -> int:
    return (await platform.fetch("SELECT count(*) FROM enrollment.events"))[0][0]


pytestmark = pytest.mark.system
