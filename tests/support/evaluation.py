"""The evaluation service on the real stack for tests: its schema, its app
(with a clock the test moves), its intake consumer on the real broker, and
an *upstream* event store standing in for enrollment, matching and sessions:
their events are appended there and published by the real outbox relay, so
they reach evaluation exactly as the other services' events will."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.events.contexts.enrollment import Actor, ProgrammeCreated, ProgrammeMode, WaveOpened
from libs.events.contexts.matching import PairCompleted, PairDissolved, PairFormed, PairRef, Side
from libs.events.contexts.sessions import SessionHeld
from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent, new_envelope
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.relay import OutboxRelay
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.enrollment.domain.values import default_settings
from services.evaluation import SERVICE
from services.evaluation.bootstrap import Evaluation
from services.evaluation.entrypoints.api import create_app
from tests.support.kafka import wait_for

ORG = "org-a"
HR = Actor(subject="hr-1")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class PairIds:
    pair_id: uuid.UUID
    programme_id: uuid.UUID
    wave_id: uuid.UUID
    country: str
    mentee_id: uuid.UUID = field(default_factory=uuid.uuid4)
    mentor_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def fields(self) -> dict[str, Any]:
        people = PairRef(
            mentee_id=self.mentee_id, mentor_id=self.mentor_id, mentee_wave_id=self.wave_id,
            mentor_wave_id=self.wave_id, mentee_country=self.country, mentor_country=self.country,
        )
        return {"pair_id": self.pair_id, "programme_id": self.programme_id, "wave_id": self.wave_id,
                "country": self.country, "people": people, "actor": HR}


@dataclass
class EvaluationEnv:
    pool: asyncpg.Pool
    schema: str
    upstream: EventStore
    client: httpx.AsyncClient
    clock: Clock
    data_dir: Path
    consumer: str

    def auth(self, *roles: str, countries: Iterable[str] = (), sub: str = "user-1", org: str = ORG) -> dict[str, str]:
        token = mint(sub, org, roles or ("hr_admin",), countries, data_dir=self.data_dir)
        return {"Authorization": f"Bearer {token}"}

    def participant(self, participant_id: uuid.UUID, org: str = ORG) -> dict[str, str]:
        return self.auth("participant", sub=str(participant_id), org=org)

    async def count_events(self) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {self.schema}.events")

    # -- upstream facts, through the relay and the broker -----------------------------

    async def publish(self, *facts: tuple[str, DomainEvent, str | None]) -> list[Envelope]:
        """Append (subject, event, country) facts upstream and wait until the
        intake has applied every one of them."""
        envelopes = []
        for subject, event, country in facts:
            envelope = new_envelope(event, service=event.context, subject=subject, tenant=ORG, country=country)
            await self.upstream.append(subject, None, [envelope])
            envelopes.append(envelope)
        ids = [e.id for e in envelopes]

        async def applied() -> bool:
            count = await self.pool.fetchval(
                f"SELECT count(*) FROM {self.schema}.applied_events WHERE consumer = $1 AND event_id = ANY($2)",
                self.consumer, ids,
            )
            return count == len(ids)

        await wait_for(applied)
        return envelopes

    async def programme(self, languages: list[str] | None = None) -> uuid.UUID:
        programme_id = uuid.uuid4()
        settings = default_settings(ProgrammeMode.REVERSE).model_copy(update={"languages": languages or ["en", "fr"]})
        created = ProgrammeCreated(
            programme_id=programme_id, programme_name="Reverse mentoring", mode=ProgrammeMode.REVERSE,
            settings=settings, actor=HR,
        )
        await self.publish((str(programme_id), created, None))
        return programme_id

    async def wave(self, programme_id: uuid.UUID, country: str, region: str) -> uuid.UUID:
        wave_id = uuid.uuid4()
        opened = WaveOpened(
            wave_id=wave_id, programme_id=programme_id, country=country, wave_name=f"{country} 1", region=region,
            committee=f"committee-{country.lower()}", starts_on=date(2026, 1, 5), ends_on=date(2026, 6, 30),
            target_pairs=30, actor=HR,
        )
        await self.publish((str(wave_id), opened, country))
        return wave_id

    def new_pair(self, programme_id: uuid.UUID, wave_id: uuid.UUID, country: str) -> PairIds:
        return PairIds(uuid.uuid4(), programme_id, wave_id, country)

    @staticmethod
    def formed(pair: PairIds) -> tuple[str, DomainEvent, str]:
        return str(pair.pair_id), PairFormed(**pair.fields(), score=80.0, confirmed_by=Side.HR), pair.country

    @staticmethod
    def completed(pair: PairIds) -> tuple[str, DomainEvent, str]:
        return str(pair.pair_id), PairCompleted(**pair.fields()), pair.country

    @staticmethod
    def dissolved(pair: PairIds) -> tuple[str, DomainEvent, str]:
        event = PairDissolved(**pair.fields(), reason="no_chemistry", side=Side.MENTEE, note="We did not click.")
        return str(pair.pair_id), event, pair.country

    @staticmethod
    def held(pair: PairIds, session_id: uuid.UUID | None = None) -> tuple[str, DomainEvent, str]:
        session_id = session_id or uuid.uuid4()
        event = SessionHeld(
            pair_id=pair.pair_id, programme_id=pair.programme_id, wave_id=pair.wave_id, country=pair.country,
            mentee_id=pair.mentee_id, mentor_id=pair.mentor_id, session_id=session_id, actor=HR,
            held_at=START, actual_minutes=45, preparation_minutes=15, topics_covered=["data_ai"],
            note="Went well.", sequence_in_pair=1,
        )
        return str(session_id), event, pair.country

    # -- the API ------------------------------------------------------------------------

    async def assignments(self, headers: dict[str, str] | None = None, **filters: Any) -> list[dict[str, Any]]:
        params = {k: str(v) for k, v in filters.items()}
        response = await self.client.get("/v1/assignments", params={**params, "limit": "200"},
                                         headers=headers or self.auth())
        assert response.status_code == 200, response.text
        return response.json()["items"]

    async def one(self, participant_id: uuid.UUID, kind: str, phase: str | None = None) -> dict[str, Any]:
        found = [a for a in await self.assignments(participant_id=participant_id, kind=kind)
                 if phase is None or a["phase"] == phase]
        assert len(found) == 1, found
        return found[0]

    async def answer(self, assignment: dict[str, Any], answers: dict[str, Any], **extra: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/assignments/{assignment['assignment_id']}/answers",
            json={"answers": answers, **extra},
            headers=self.participant(uuid.UUID(assignment["participant_id"])),
        )

    def later(self, days: int) -> None:
        self.clock.now += timedelta(days=days)


async def evaluation_env(
    pool: asyncpg.Pool, bootstrap: str, data_dir: Path
) -> AsyncIterator[EvaluationEnv]:
    """A migrated evaluation schema, an upstream store, the relay and the
    intake consumer running, and an ASGI client (one consumer group join per
    module: Tansu holds a join for about half the session timeout)."""
    schema, upstream_schema = f"t_{uuid.uuid4().hex[:12]}", f"t_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        await migrate(conn, schema, SERVICE.migrations)
        await migrate(conn, upstream_schema)
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = Settings(data_dir=data_dir, topic_prefix=prefix)
    store = EventStore(pool, schema, topic_prefix=prefix, service="evaluation")
    upstream = EventStore(pool, upstream_schema, topic_prefix=prefix, service="upstream")
    ctx = ServiceContext("evaluation", pool, store, bootstrap, settings, TokenVerifier.from_settings(settings))
    clock = Clock()
    definition = dataclasses.replace(SERVICE, create_app=lambda c: create_app(c, clock))
    intake = Evaluation(pool, store).intake()
    intake.name = f"evaluation-intake-{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(pool, upstream_schema, bootstrap, poll_interval_s=0.05).run(stop))
    runner = ConsumerRunner(pool, schema, intake, bootstrap, topic_prefix=prefix, session_timeout_ms=1000,
                            fetch_max_wait_ms=50, retry_backoff_s=0.01)
    consumer = asyncio.create_task(runner.run(stop))
    await runner.wait_assigned()
    transport = httpx.ASGITransport(app=definition.build_app(ctx))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://evaluation") as client:
            yield EvaluationEnv(pool, schema, upstream, client, clock, data_dir, intake.name)
    finally:
        stop.set()
        await asyncio.gather(relay, consumer, return_exceptions=True)
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.execute(f"DROP SCHEMA {upstream_schema} CASCADE")
