"""Issue 8's proof of erasure, on a real platform with every service.

A unique canary string is planted in one participant's data everywhere it
can go: enrollment (display name, e-mail, motivation, HR references, needs
comments, withdrawal reason), matching (a decline note), sessions (a held
session's note, a cancellation reason, check-in blockers and next step) and
evaluation (free-text answer, committed-action descriptions). Every service
receives it through the broker. The global HR admin then erases the
participant through the enrollment API; once ``ParticipantErased`` has
reached every service, the canary is nowhere: in no row of any table of any
schema of the database (event stores and outboxes included), in no record of
any topic, in no log line written during the test; and rebuilding every
service's read models from the log (``binome replay``) works and brings no
trace of it back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from libs.auth.devkeys import mint
from libs.runtime.platform import Platform
from libs.runtime.replay import replay
from libs.settings import Settings
from services import SERVICES
from tests.support.databases import fresh_database
from tests.support.enrollment import mentee, mentor
from tests.support.kafka import wait_for

pytestmark = pytest.mark.integration

ORG = "org-canary"
QUALIFIED = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}


class Lines(logging.Handler):
    """Every log record written while the test runs, as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: keep its parts
            message = f"{record.msg!r} {record.args!r}"
        self.lines.append(f"{record.name} {message} {record.msg!r} {record.__dict__!r}")


@pytest.fixture
async def platform(database_url: str, tmp_path) -> AsyncIterator[Platform]:
    """Every service over a database of its own (so that "every schema"
    means this platform's) and a broker of its own (every topic is its)."""
    async with fresh_database(database_url, "canary") as url:
        settings = Settings(
            database_url=url,
            kafka_bootstrap=None,
            data_dir=tmp_path,
            consumer_session_timeout_ms=1000,
            consumer_fetch_max_wait_ms=50,
            relay_poll_interval_s=0.05,
        )
        started = await Platform.start(settings, SERVICES)
        try:
            yield started
        finally:
            await started.shutdown()


class World:
    def __init__(self, platform: Platform, client: httpx.AsyncClient) -> None:
        self.platform, self.client, self.pool = platform, client, platform.pool
        self.data_dir = platform.settings.data_dir

    def auth(self, *roles: str, sub: str = "hr-global") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(sub, ORG, roles or ('hr_admin',), [], data_dir=self.data_dir)}"}

    def participant(self, participant_id: str) -> dict[str, str]:
        return self.auth("participant", sub=participant_id)

    async def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = await self.client.request(method, path, json=body, headers=headers or self.auth())
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def caught_up(self) -> bool:
        """Every consumer of every service applied every event of its sources."""
        for service in self.platform.services:
            for projection in service.projections(self.platform.contexts[service.name]):
                for context in projection.contexts:
                    missing = await self.pool.fetchval(
                        f"""SELECT count(*) FROM {context}.events e WHERE NOT EXISTS (
                                SELECT 1 FROM {service.schema}.applied_events a
                                WHERE a.consumer = $1 AND a.event_id = e.event_id)""",
                        projection.name,
                    )
                    if missing:
                        return False
        return True

    async def row(self, sql: str, *args: Any) -> Any:
        async def found() -> Any:
            return await self.pool.fetchrow(sql, *args)

        return await wait_for(found)


async def database_hits(pool: asyncpg.Pool, canary: str) -> list[str]:
    """``schema.table`` of every row, in every table of every schema, holding the canary."""
    tables = await pool.fetch(
        """SELECT table_schema, table_name FROM information_schema.tables
           WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
           ORDER BY 1, 2"""
    )
    hits = []
    for t in tables:
        rows = await pool.fetch(f'SELECT t::text FROM "{t[0]}"."{t[1]}" t')
        hits += [f"table {t[0]}.{t[1]}" for r in rows if canary in r[0]]
    return sorted(set(hits))


async def topic_hits(bootstrap: str, canary: str) -> tuple[list[str], int]:
    """Topics with a record (key, value or header) holding the canary; and how many records were read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    hits: set[str] = set()
    read = 0
    try:
        topics = sorted(await consumer.topics())
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    read += 1
                    parts = [record.key or b"", record.value or b"", *(v for _, v in record.headers or ())]
                    if any(canary.encode() in part for part in parts):
                        hits.add(f"topic {tp.topic}")
    finally:
        await consumer.stop()
    return sorted(hits), read


async def plant(world: World, canary: str) -> str:
    """The canary participant (a mentee), with the canary in every place it can go."""
    call = world.call
    programme = await call("POST", "/enrollment/v1/programmes", {"name": "Canary programme", "mode": "reverse"})
    wave = await call("POST", f"/enrollment/v1/programmes/{programme['programme_id']}/waves", {
        "name": "FR wave", "region": "Europe", "country": "FR", "committee": "committee-fr",
        "starts_on": "2026-01-05", "ends_on": "2099-12-20", "target_pairs": 30,
    })  # fmt: skip
    enrol = f"/enrollment/v1/waves/{wave['wave_id']}/participants"
    person = await call("POST", enrol, mentee(
        f"E-{canary}", display_name=f"Ada {canary}", email=f"{canary}@example.com",
        motivation=f"Because {canary}", manager_ref=f"M-{canary}",
        themes_wanted=[{"theme": "data_ai", "level": 2}],
    ))  # fmt: skip
    pid = person["participant_id"]
    needs = {"answers": [{"question_id": "priorities", "themes": ["cybersecurity"]},
                         {"question_id": "least_at_ease", "themes": []}],
             "comments": {"priorities": f"Needs {canary}"}}
    await call("POST", f"/enrollment/v1/participants/{pid}/needs-answers", needs)
    mentors = []
    for level in (4, 3):
        body = mentor(f"R-{uuid.uuid4().hex[:8]}", themes_offered=[{"theme": "data_ai", "level": level}], capacity=1)
        mentors.append((await call("POST", enrol, body))["participant_id"])
        await call("POST", f"/enrollment/v1/participants/{mentors[-1]}/qualification", QUALIFIED)

    # Matching: the first proposal declined with a note, the second confirmed.
    await world.row("SELECT 1 FROM matching.candidates WHERE participant_id = $1 AND matchable", uuid.UUID(pid))
    for m in mentors:
        await world.row("SELECT 1 FROM matching.candidates WHERE participant_id = $1 AND matchable", uuid.UUID(m))
    first = (await call("POST", "/matching/v1/runs", {"wave_ids": [wave["wave_id"]]}))["pairs"][0]["pair_id"]
    await call("POST", f"/matching/v1/pairs/{first}:decline", {"note": f"Declined {canary}"}, world.participant(pid))
    pair = (await call("POST", "/matching/v1/runs", {"wave_ids": [wave["wave_id"]]}))["pairs"][0]["pair_id"]
    await call("POST", f"/matching/v1/pairs/{pair}:confirm")

    # Sessions: a note, a cancellation reason, a check-in.
    await world.row("SELECT 1 FROM sessions.pairs WHERE pair_id = $1 AND status = 'formed'", uuid.UUID(pair))
    clock = world.platform.clock
    me = world.participant(pid)
    sessions = []
    for hours in (1, 48):
        body = {"starts_at": (clock() + timedelta(hours=hours)).isoformat(), "duration_minutes": 45,
                "format": "remote", "planned_topics": ["data_ai"]}
        sessions.append(await call("POST", f"/sessions/v1/pairs/{pair}/sessions", body, me))
    await call("POST", f"/sessions/v1/sessions/{sessions[1]['session_id']}:cancel", {"reason": f"Sick {canary}"}, me)
    clock.advance(timedelta(hours=2))
    held = {"actual_minutes": 45, "preparation_minutes": 10, "topics_covered": ["data_ai"], "note": f"Held {canary}"}
    await call("POST", f"/sessions/v1/sessions/{sessions[0]['session_id']}:mark-held", held, me)
    check_in = {"mood": 4, "blockers": f"Blocked {canary}", "next_step": f"Next {canary}"}
    await call("POST", f"/sessions/v1/pairs/{pair}/check-ins", check_in, me)

    # Evaluation: a free-text answer, then the closing actions.
    assigned = """SELECT assignment_id FROM evaluation.assignments
                  WHERE participant_id = $1 AND kind = $2 AND status = 'open'"""
    feedback = await world.row(assigned, uuid.UUID(pid), "session_feedback")
    answers = {"useful": 4, "topics_covered": "yes", "comment": f"Feedback {canary}"}
    await call("POST", f"/evaluation/v1/assignments/{feedback[0]}/answers", {"answers": answers}, me)
    await call("POST", f"/matching/v1/pairs/{pair}:complete")
    closing = await world.row(assigned, uuid.UUID(pid), "closing_self_assessment")
    body = {"answers": {"new_skills": 4, "apply_at_work": 4},
            "actions": [{"description": f"Action {canary}", "status": "started"}]}
    await call("POST", f"/evaluation/v1/assignments/{closing[0]}/answers", body, me)

    # Enrollment again: the participant leaves with a reason.
    await call("POST", f"/enrollment/v1/participants/{pid}:withdraw", {"reason": f"Leaving {canary}"})
    return pid


async def test_an_erased_participant_leaves_no_trace_anywhere(platform: Platform, capfd) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    lines = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(lines)
    root.setLevel(min(level, logging.INFO))
    try:
        transport = httpx.ASGITransport(app=platform.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://binome") as client:
            world = World(platform, client)
            pid = await plant(world, canary)
            await wait_for(world.caught_up)
            assert await database_hits(platform.pool, canary)  # it went everywhere it could
            export = await world.call("GET", f"/v1/gdpr/participants/{pid}/export")
            assert set(export["services"]) >= {"enrollment", "matching", "sessions", "evaluation"}
            assert canary in str(export)

            erased = await world.call("POST", f"/enrollment/v1/participants/{pid}:erase")
            assert erased["status"] == "erased"
            await wait_for(world.caught_up)
            hits = await database_hits(platform.pool, canary)

            # Every read model rebuilt from the log: it works, and brings nothing back.
            for service in platform.services:
                await replay(platform.pool, platform.settings, platform.services, service.name)
            await wait_for(world.caught_up)
            hits += [f"after replay: {hit}" for hit in await database_hits(platform.pool, canary)]
            erased_again = await world.call("GET", f"/enrollment/v1/participants/{pid}")
            assert erased_again["status"] == "erased"
    finally:
        root.removeHandler(lines)
        root.setLevel(level)

    found, read = await topic_hits(platform.infrastructure.bootstrap, canary)
    assert read > 0
    hits += found
    out, err = capfd.readouterr()
    hits += ["log line" for line in [*lines.lines, *out.splitlines(), *err.splitlines()] if canary in line][:1]
    assert hits == []
