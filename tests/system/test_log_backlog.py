"""Lag against the log, and start-up that costs what is pending, on the
assembled platform (``binome up`` as a subprocess, faults from outside).

Reported: a projection blocked for 60 s left ``binome_consumer_lag`` at 0
(the broker's view) while the real backlog grew; every start re-published
the whole history.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.support.enrollment import mentee, mentor, programme_body, wave_body
from tests.support.platform_process import PlatformProcess, auth, eventually

CONSUMER = {"consumer": "matching-candidate-pool", "source": "enrollment"}
FAST = {"BINOME_BACKLOG_INTERVAL_S": "0.5"}


def open_wave(platform: PlatformProcess, organisation: str) -> tuple[dict[str, str], str]:
    headers = auth(platform.token("hr-1", organisation, ["hr_admin"]))
    with platform.http as http:
        programme = http.post("/enrollment/v1/programmes", json=programme_body(), headers=headers).json()
        wave = http.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", json=wave_body("FR"), headers=headers)
        assert wave.status_code == 201, wave.text
    return headers, wave.json()["wave_id"]


def enrol(platform: PlatformProcess, headers: dict[str, str], wave_id: str, n: int) -> None:
    with platform.http as http:
        for _ in range(n):
            ref = f"E{uuid.uuid4().hex[:8]}"
            body = mentee(ref) if len(ref) % 2 else mentor(ref)
            response = http.post(f"/enrollment/v1/waves/{wave_id}/participants", json=body, headers=headers)
            assert response.status_code == 201, response.text


async def candidates(platform: PlatformProcess, organisation: str) -> int:
    conn = await asyncpg.connect(platform.database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM matching.candidates WHERE organisation = $1", organisation)
    finally:
        await conn.close()


async def test_a_blocked_consumer_shows_a_backlog_that_grows_by_the_second(tmp_path: Path) -> None:
    with PlatformProcess.start(tmp_path, env=FAST) as platform:
        organisation = f"org-{uuid.uuid4().hex[:6]}"
        headers, wave_id = open_wave(platform, organisation)
        eventually(lambda: platform.metric("binome_consumer_backlog_events", **CONSUMER) == 0, what="caught up")

        blocker = await asyncpg.connect(platform.database_url)
        try:
            locked = blocker.transaction()
            await locked.start()
            await blocker.execute("LOCK TABLE matching.candidates IN ACCESS EXCLUSIVE MODE")
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
            await locked.rollback()
        finally:
            await blocker.close()

        eventually(lambda: platform.metric("binome_consumer_backlog_events", **CONSUMER) == 0, what="backlog drained")
        assert platform.metric("binome_consumer_backlog_seconds", **CONSUMER) == 0
        assert await candidates(platform, organisation) == 9


async def test_a_restart_publishes_only_what_consumers_had_not_applied(tmp_path: Path) -> None:
    organisation = f"org-{uuid.uuid4().hex[:6]}"
    with PlatformProcess.start(tmp_path, env=FAST) as platform:
        headers, wave_id = open_wave(platform, organisation)
        enrol(platform, headers, wave_id, 20)
        # Every consumer of every log caught up (the sum over all of them).
        eventually(lambda: platform.metric("binome_consumer_backlog_events") == 0, what="all caught up")
        stored = await events_in_store(platform)

    # A clean restart of a caught-up platform: the new, empty broker gets nothing.
    platform = PlatformProcess.create(tmp_path, env=FAST)
    platform.launch()
    try:
        assert platform.metric("binome_events_republished_total") == 0
        # Matching's read model is blocked while 5 more people enrol; the
        # platform then dies with those events published but not applied.
        blocker = await asyncpg.connect(platform.database_url)
        try:
            locked = blocker.transaction()
            await locked.start()
            await blocker.execute("LOCK TABLE matching.candidates IN ACCESS EXCLUSIVE MODE")
            enrol(platform, headers, wave_id, 5)
            eventually(lambda: (platform.metric("binome_consumer_backlog_events", **CONSUMER) or 0) >= 5, what="backlog")
            platform.kill()
            await locked.rollback()
        finally:
            await blocker.close()
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


async def events_in_store(platform: PlatformProcess) -> int:
    conn = await asyncpg.connect(platform.database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM enrollment.events")
    finally:
        await conn.close()


pytestmark = pytest.mark.system
