"""The sessions service on the real stack for API tests.

``sessions_env`` gives a migrated sessions schema with the app over it (and
a clock the test moves), plus a *source* event store standing in for the
matching and enrollment services: a test appends their events there, the
real outbox relay publishes them to the broker, and the service's own
consumer (``PairDirectory``) applies them, as in production. One relay and
one consumer serve a whole test module (a consumer-group join costs about
half the session timeout on Tansu).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.events import new_envelope
from libs.events.contexts.enrollment import Actor, ProgrammeCreated, ProgrammeMode, ProgrammeSettings
from libs.events.contexts.matching import PairCompleted, PairDissolved, PairFormed, PairRef, Side
from libs.events.registry import DomainEvent
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.relay import OutboxRelay
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.sessions import SERVICE
from services.sessions.consumers.pair_directory import PairDirectory
from services.sessions.entrypoints.api import create_app
from tests.support.kafka import wait_for

ORG = "org-a"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
THEMES = ("data_ai", "cybersecurity", "social_media")
MATCHING_ACTOR = Actor(subject="matching-service", client_id="matching")
Headers = dict[str, str]


@dataclass
class MovableClock:
    """The service's "now", set by the test."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class PairIds:
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID
    mentor_country: str
    organisation: str = ORG


@dataclass
class SessionsEnv:
    pool: asyncpg.Pool
    schema: str
    store: EventStore
    source: EventStore  # stands in for the matching and enrollment services' logs
    client: httpx.AsyncClient
    clock: MovableClock
    data_dir: Path
    topic_prefix: str
    projection: PairDirectory  # the consumer this environment runs

    # -- callers -------------------------------------------------------------------

    def auth(self, *roles: str, countries: Iterable[str] = (), sub: str = "user-1", org: str = ORG) -> dict[str, str]:
        token = mint(sub, org, roles or ("hr_admin",), countries, data_dir=self.data_dir)
        return {"Authorization": f"Bearer {token}"}

    def member(self, participant_id: UUID, org: str = ORG) -> dict[str, str]:
        """A participant's token: its subject is the participant id."""
        return self.auth("participant", sub=str(participant_id), org=org)

    async def count_events(self) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {self.schema}.events")

    # -- the world, through the broker ------------------------------------------------

    async def programme(self, themes: Iterable[str] = THEMES, org: str = ORG) -> UUID:
        programme_id = uuid.uuid4()
        settings = minimal_settings(themes)
        created = ProgrammeCreated(
            actor=MATCHING_ACTOR,
            programme_id=programme_id,
            programme_name="Reverse mentoring",
            mode=ProgrammeMode.REVERSE,
            settings=settings,
        )
        await self._emit("enrollment", str(programme_id), org, None, created)
        known = f"SELECT true FROM {self.schema}.programmes WHERE programme_id = $1"
        await wait_for(lambda: self.pool.fetchval(known, programme_id))
        return programme_id

    async def form_pair(
        self,
        programme_id: UUID,
        *,
        country: str = "FR",
        mentor_id: UUID | None = None,
        mentor_country: str | None = None,
        org: str = ORG,
    ) -> PairIds:
        pair = PairIds(
            uuid.uuid4(),
            programme_id,
            uuid.uuid4(),
            country,
            uuid.uuid4(),
            mentor_id or uuid.uuid4(),
            mentor_country or country,
            org,
        )
        await self._pair_event(pair, PairFormed, "formed", score=80.0, confirmed_by=Side.HR)
        return pair

    async def dissolve(self, pair: PairIds) -> None:
        await self._pair_event(pair, PairDissolved, "dissolved", reason="no_chemistry", side=Side.HR)

    async def complete(self, pair: PairIds) -> None:
        await self._pair_event(pair, PairCompleted, "completed")

    async def _pair_event(self, pair: PairIds, kind: type[DomainEvent], status: str, **fields: Any) -> None:
        people = PairRef(
            mentee_id=pair.mentee_id,
            mentor_id=pair.mentor_id,
            mentee_wave_id=pair.wave_id,
            mentor_wave_id=pair.wave_id,
            mentee_country=pair.country,
            mentor_country=pair.mentor_country,
        )
        payload = kind(
            actor=MATCHING_ACTOR,
            pair_id=pair.pair_id,
            programme_id=pair.programme_id,
            wave_id=pair.wave_id,
            country=pair.country,
            people=people,
            **fields,
        )
        await self._emit("matching", str(pair.pair_id), pair.organisation, pair.country, payload)

        async def applied() -> bool:
            found = await self.pool.fetchval(f"SELECT status FROM {self.schema}.pairs WHERE pair_id = $1", pair.pair_id)
            return found == status

        await wait_for(applied)

    async def _emit(self, service: str, subject: str, org: str, country: str | None, payload: DomainEvent) -> None:
        envelope = new_envelope(payload, service=service, subject=subject, tenant=org, country=country)
        await self.source.append(subject, None, [envelope])

    # -- sessions through the API -----------------------------------------------------

    async def schedule(
        self, pair: PairIds, hours_from_now: float, minutes: int = 60, headers: Headers | None = None, **body: Any
    ) -> dict[str, Any]:
        """Schedule as the mentee (unless ``headers``); the call must succeed."""
        starts_at = self.clock.now + timedelta(hours=hours_from_now)
        response = await self.post_session(pair, schedule_body(starts_at, minutes, **body), headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def post_session(self, pair: PairIds, body: dict[str, Any], headers: Headers | None = None) -> httpx.Response:
        """``POST /v1/pairs/{id}/sessions``, as the mentee unless ``headers``."""
        url = f"/v1/pairs/{pair.pair_id}/sessions"
        return await self.client.post(url, json=body, headers=headers or self.member(pair.mentee_id))

    async def act(
        self, session: dict[str, Any], action: str, body: dict[str, Any], headers: Headers | None = None
    ) -> httpx.Response:
        """``POST /v1/sessions/{id}:{action}``, as an HR admin unless ``headers``."""
        url = f"/v1/sessions/{session['session_id']}:{action}"
        return await self.client.post(url, json=body, headers=headers or self.auth())

    async def check_in(self, pair: PairIds, body: dict[str, Any], headers: Headers | None = None) -> httpx.Response:
        """``POST /v1/pairs/{id}/check-ins``, as the mentee unless ``headers``."""
        url = f"/v1/pairs/{pair.pair_id}/check-ins"
        return await self.client.post(url, json=body, headers=headers or self.member(pair.mentee_id))


def schedule_body(starts_at: datetime, minutes: int = 60, **overrides: Any) -> dict[str, Any]:
    return {
        "starts_at": starts_at.isoformat(),
        "duration_minutes": minutes,
        "format": "remote",
        "planned_topics": ["data_ai"],
        **overrides,
    }


def minimal_settings(themes: Iterable[str]) -> ProgrammeSettings:
    """Enough of enrollment's settings for sessions, which reads only the themes."""
    criteria = ("theme_fit", "learner_profile", "intentions", "business_function", "language", "time_zone")
    weights = dict.fromkeys((*criteria, "cross_entity", "availability"), 1.0)
    return ProgrammeSettings.model_validate(
        {
            "themes": [{"code": code, "label": code.replace("_", " ")} for code in themes],
            "languages": ["en"],
            "learner_profiles": ["experiential", "theoretical", "mixed"],
            "intentions": [],
            "needs_questions": [],
            "qualification_rule": {
                "min_case_study_score": 50,
                "min_teaching_ease": 3,
                "min_interpersonal_skills": 3,
                "training_required": False,
            },
            "seniority_rule": {"enforced": False, "min_level_gap": 0},
            "matching": {"weights": weights, "language_required": False, "objective": "max_total_score"},
        }
    )


async def sessions_env(pool: asyncpg.Pool, bootstrap: str, data_dir: Path) -> AsyncIterator[SessionsEnv]:
    """Schemas of their own, the relay of the source log, the service's
    consumer, the app over its schema and an ASGI client."""
    schema, source_schema = f"t_{uuid.uuid4().hex[:12]}", f"t_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        await migrate(conn, schema, SERVICE.migrations)
        await migrate(conn, source_schema)
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = Settings(data_dir=data_dir)
    store = EventStore(pool, schema, topic_prefix=prefix, service="sessions")
    source = EventStore(pool, source_schema, topic_prefix=prefix, service="matching")
    projection = PairDirectory(schema, name=f"sessions-pairs-{uuid.uuid4().hex[:8]}")
    consumer = ConsumerRunner(
        pool,
        schema,
        projection,
        bootstrap,
        service="sessions",
        topic_prefix=prefix,
        session_timeout_ms=1000,
        fetch_max_wait_ms=50,
        retry_backoff_s=0.01,
    )
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(OutboxRelay(pool, source_schema, bootstrap, poll_interval_s=0.05).run(stop)),
        asyncio.create_task(consumer.run(stop)),
    ]
    clock = MovableClock()
    ctx = ServiceContext("sessions", pool, store, bootstrap, settings, TokenVerifier.from_settings(settings))
    transport = httpx.ASGITransport(app=create_app(ctx, clock))
    try:
        await consumer.wait_assigned()
        async with httpx.AsyncClient(transport=transport, base_url="http://sessions") as client:
            yield SessionsEnv(pool, schema, store, source, client, clock, data_dir, prefix, projection)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.execute(f"DROP SCHEMA {source_schema} CASCADE")
