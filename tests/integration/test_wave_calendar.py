"""Waves close their enrolment and end on their dates by themselves (issue
19), on real PostgreSQL: the wave calendar's job at chosen instants, and the
scheduler that runs one job at a time per platform."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from libs.runtime.scheduler import ScheduledJob
from services.enrollment.bootstrap import Enrollment
from services.enrollment.service_layer.calendar import run_due
from tests.support.enrollment import EnrollmentEnv, enrollment_env, mentee, wave_body
from tests.support.problems import problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, tmp_path_factory) -> AsyncIterator[EnrollmentEnv]:
    async for environment in enrollment_env(pool, tmp_path_factory.mktemp("calendar")):
        yield environment


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:00+00:00")


async def test_waves_close_and_end_on_their_dates(env: EnrollmentEnv) -> None:
    service = Enrollment(env.pool, env.store, env.vault)
    programme = (await env.programme())["programme_id"]

    async def wave(**dates: str) -> str:
        body = wave_body(name=f"wave {uuid.uuid4().hex[:6]}", starts_on="2026-03-01", **dates)
        return (await env.post(f"/v1/programmes/{programme}/waves", body))["wave_id"]

    closing = await wave(enrolment_closes_on="2026-03-10", ends_on="2026-06-30")
    ending = await wave(ends_on="2026-04-30")
    running = await wave(ends_on="2099-06-30")

    async def status(wave_id: str) -> dict:
        return (await env.client.get(f"/v1/waves/{wave_id}", headers=env.auth())).json()

    assert await run_due(service, datetime(2026, 3, 9, 23, 59, tzinfo=UTC)) == 0
    assert await run_due(service, at("2026-03-10")) == 1
    closed = await status(closing)
    assert closed["status"] == "enrolment_closed" and closed["enrolment_closes_on"] == "2026-03-10"
    assert closed["updated_by"] == {"subject": "service:enrollment", "client_id": "wave-calendar"}
    late = await env.client.post(f"/v1/waves/{closing}/participants", json=mentee("LATE"), headers=env.auth())
    assert "enrolment is closed" in problem(late, 409)["detail"]

    assert await run_due(service, at("2026-04-30")) == 0  # its last day is still a wave day
    assert await run_due(service, at("2026-05-01")) == 1
    assert (await status(ending))["status"] == "ended"
    events = await env.pool.fetch(
        f"SELECT type FROM {env.schema}.events WHERE stream_id = $1 ORDER BY version", ending
    )
    assert [e["type"].split(".")[2] for e in events] == ["WaveOpened", "WaveEnrolmentClosed", "WaveEnded"]

    assert await run_due(service, at("2026-07-01")) == 1
    assert await run_due(service, at("2026-07-01")) == 0  # done: a second run finds nothing due
    assert (await status(closing))["status"] == "ended" and (await status(running))["status"] == "open"


async def test_one_scheduled_job_runs_at_a_time(pool: asyncpg.Pool) -> None:
    name = f"test.{uuid.uuid4().hex[:8]}"
    started, release, calls = asyncio.Event(), asyncio.Event(), []

    async def job(now: datetime) -> int:
        calls.append(now)
        started.set()
        await release.wait()
        return 0

    first = ScheduledJob(name, pool, job, lambda: at("2026-05-01"))
    second = ScheduledJob(name, pool, job, lambda: at("2026-05-02"))
    running = asyncio.create_task(first.tick())
    await started.wait()
    assert await second.tick() is None  # the other instance holds the lock: this tick skips
    release.set()
    assert await running == 0
    assert await second.tick() == 0  # the lock went with the first tick's transaction
    assert calls == [at("2026-05-01"), at("2026-05-02")]


async def test_a_failing_tick_releases_the_lock_and_a_backlog_drains(pool: asyncpg.Pool) -> None:
    name = f"test.{uuid.uuid4().hex[:8]}"
    backlog = [3, 2, 0]

    async def failing(now: datetime) -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await ScheduledJob(name, pool, failing, lambda: at("2026-05-01")).tick()

    stop = asyncio.Event()

    async def draining(now: datetime) -> int:
        done = backlog.pop(0)
        if not backlog:
            stop.set()
        return done

    # Ticks again at once while work was done, so a one-hour interval never delays the backlog.
    job = ScheduledJob(name, pool, draining, lambda: at("2026-05-01"), interval_s=3600)
    await asyncio.wait_for(job.run(stop), timeout=30)
    assert backlog == []
