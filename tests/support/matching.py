"""The matching service on the real stack, fed by the real enrollment service.

Enrollment (its API over a test schema) appends events; its outbox relay
publishes them to the broker; matching's candidate-pool consumer applies them
to matching's own schema. One environment per test module: the relay and the
consumer (its group join costs about half the session timeout on Tansu) are
shared, and each test makes its own programme.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from libs.api.held_reads import HeldReads
from libs.auth.tokens import TokenVerifier
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.relay import OutboxRelay
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.matching import SERVICE
from tests.support.enrollment import EnrollmentEnv, enrollment_env, mentee, mentor, wave_body
from tests.support.kafka import wait_for

QUALIFIED = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}


@dataclass
class MatchingEnv:
    enrollment: EnrollmentEnv
    pool: asyncpg.Pool
    schema: str
    store: EventStore
    client: httpx.AsyncClient
    consumer: str  # the candidate pool's consumer name

    def auth(self, *roles: str, countries: Iterable[str] = (), sub: str = "hr-1", org: str = "org-a") -> dict[str, str]:
        return self.enrollment.auth(*roles, countries=countries, sub=sub, org=org)

    def as_participant(self, participant_id: str) -> dict[str, str]:
        return self.auth("participant", sub=participant_id)

    async def synced(self) -> None:
        """Wait until matching applied every enrollment event written so far."""
        e, m = self.enrollment.schema, self.schema

        async def caught_up() -> bool:
            return await self.pool.fetchval(
                f"""SELECT NOT EXISTS (SELECT 1 FROM {e}.events ev WHERE NOT EXISTS (
                        SELECT 1 FROM {m}.applied_events a WHERE a.consumer = $1 AND a.event_id = ev.event_id))""",
                self.consumer,
            )

        await wait_for(caught_up)

    async def count_events(self) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {self.schema}.events")

    # -- enrollment data -------------------------------------------------------------

    async def programme(self, **overrides: Any) -> str:
        return (await self.enrollment.programme(**overrides))["programme_id"]

    async def wave(self, programme_id: str, country: str = "FR", **overrides: Any) -> str:
        body = wave_body(country, name=f"{country} wave {uuid.uuid4().hex[:6]}", **overrides)
        return (await self.enrollment.post(f"/v1/programmes/{programme_id}/waves", body))["wave_id"]

    async def mentee(self, wave_id: str, **overrides: Any) -> str:
        ref = overrides.pop("employee_ref", f"E{uuid.uuid4().hex[:8]}")
        return (await self.enrollment.enrol(wave_id, mentee(ref, **overrides)))["participant_id"]

    async def mentor(self, wave_id: str, *, qualified: bool = True, **overrides: Any) -> str:
        ref = overrides.pop("employee_ref", f"R{uuid.uuid4().hex[:8]}")
        participant_id = (await self.enrollment.enrol(wave_id, mentor(ref, **overrides)))["participant_id"]
        scores = QUALIFIED if qualified else {**QUALIFIED, "case_study_score": 10}
        await self.enrollment.post(f"/v1/participants/{participant_id}/qualification", scores)
        return participant_id

    async def withdraw(self, participant_id: str) -> None:
        await self.enrollment.post(f"/v1/participants/{participant_id}:withdraw", {"reason": "New job."})

    # -- matching calls ----------------------------------------------------------------

    async def ok(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Call the matching API (as a global HR admin unless ``headers``); it must succeed."""
        response = await self.client.request(method, path, json=body, headers=headers or self.auth("hr_admin"))
        assert response.is_success, response.text
        return response.json()

    async def run(self, *wave_ids: str, **body: Any) -> dict[str, Any]:
        return await self.ok("POST", "/v1/runs", {"wave_ids": list(wave_ids), **body})

    async def pair(self, pair_id: str) -> dict[str, Any]:
        return await self.ok("GET", f"/v1/pairs/{pair_id}")


async def matching_env(
    pool: asyncpg.Pool, data_dir: Path, bootstrap: str, held_reads: HeldReads | None = None
) -> AsyncIterator[MatchingEnv]:
    """``held_reads``: what the matching app holds (libs/api/held_reads.py); by default nothing."""
    async for enrollment in enrollment_env(pool, data_dir):
        schema = f"t_{uuid.uuid4().hex[:12]}"
        async with pool.acquire() as conn:
            await migrate(conn, schema, SERVICE.migrations)
        # Seals its personal fields with the one vault, as binome up does.
        store = EventStore(
            pool, schema, topic_prefix=enrollment.topic_prefix, service="matching", personal=enrollment.store.personal
        )
        settings = Settings(data_dir=data_dir)
        verifier = TokenVerifier.from_settings(settings)
        ctx = ServiceContext("matching", pool, store, bootstrap, settings, verifier, enrollment.vault)
        if held_reads is not None:
            ctx.held_reads = held_reads
        projection = SERVICE.projections(ctx)[0]
        projection.name = f"{projection.name}-{uuid.uuid4().hex[:6]}"  # a consumer group of its own
        stop = asyncio.Event()
        relay = OutboxRelay(pool, enrollment.schema, bootstrap, service="enrollment", poll_interval_s=0.05)
        runner = ConsumerRunner(
            pool, schema, projection, bootstrap, service="matching", topic_prefix=enrollment.topic_prefix,
            session_timeout_ms=1000, fetch_max_wait_ms=50, retry_backoff_s=0.01,
            personal=enrollment.store.personal,  # as binome up: the pool reads references opened
        )
        tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]
        try:
            await runner.wait_assigned()
            transport = httpx.ASGITransport(app=SERVICE.build_app(ctx))
            async with httpx.AsyncClient(transport=transport, base_url="http://matching") as client:
                yield MatchingEnv(enrollment, pool, schema, store, client, projection.name)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await pool.execute(f"DROP SCHEMA {schema} CASCADE")
