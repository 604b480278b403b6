"""Event sequences for the insights tests, and the pipeline that carries them.

``Scenario`` writes real, registered events (the models of libs/events) with
explicit times, as the enrollment, matching, sessions and evaluation services
would; ``Pipeline`` appends them to event stores, relays them through the
broker and runs the insights projection as a consumer group.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.events import Envelope, new_envelope
from libs.events.contexts import enrollment as en
from libs.events.contexts import evaluation as evl
from libs.events.contexts import matching as ma
from libs.events.contexts import sessions as se
from libs.events.registry import DomainEvent
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.relay import OutboxRelay
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.enrollment.domain.values import default_settings
from services.insights import SERVICE
from services.insights.entrypoints.api import create_app
from services.insights.consumers.insights import InsightsProjection
from tests.support.enrollment_domain import profile
from tests.support.kafka import wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: "Now" in the tests: the clock of the API and of the business gauges.
NOW = T0 + timedelta(days=30)
ACTOR = en.Actor(subject="hr-1")
SOURCES = ("enrollment", "matching", "sessions", "evaluation")


@dataclass
class Person:
    participant_id: uuid.UUID
    wave_id: uuid.UUID
    country: str


@dataclass
class Pair:
    pair_id: uuid.UUID
    mentee: Person
    mentor: Person
    programme_id: uuid.UUID
    held: int = 0

    @property
    def ref(self) -> ma.PairRef:
        return ma.PairRef(
            mentee_id=self.mentee.participant_id, mentor_id=self.mentor.participant_id,
            mentee_wave_id=self.mentee.wave_id, mentor_wave_id=self.mentor.wave_id,
            mentee_country=self.mentee.country, mentor_country=self.mentor.country,
        )


@dataclass
class Scenario:
    """A programme of one organisation and the events of its life."""

    organisation: str = field(default_factory=lambda: f"org-{uuid.uuid4().hex[:8]}")
    programme_id: uuid.UUID = field(default_factory=uuid.uuid4)
    events: list[tuple[str, Envelope]] = field(default_factory=list)  # (stream, envelope)
    waves: dict[str, uuid.UUID] = field(default_factory=dict)

    def _emit(self, context: str, stream: Any, payload: DomainEvent, at: datetime, country: str | None) -> None:
        envelope = new_envelope(
            payload, service=context, subject=str(stream), tenant=self.organisation, country=country
        ).model_copy(update={"time": at})
        self.events.append((str(stream), envelope))

    # -- enrollment ---------------------------------------------------------------

    def programme(self, name: str = "Reverse mentoring") -> Scenario:
        self._emit("enrollment", self.programme_id, en.ProgrammeCreated(
            actor=ACTOR, programme_id=self.programme_id, programme_name=name, mode=en.ProgrammeMode.REVERSE,
            settings=default_settings(en.ProgrammeMode.REVERSE),
        ), T0 - timedelta(days=60), None)
        return self

    def wave(self, country: str, region: str = "Europe", *, key: str | None = None, starts: date = date(2026, 1, 5),
             target: int = 10) -> uuid.UUID:
        """Open a wave; ``key`` (default: the country) names it for ``enrol``."""
        wave_id = uuid.uuid4()
        self.waves[key or country] = wave_id
        self._emit("enrollment", wave_id, en.WaveOpened(
            actor=ACTOR, wave_id=wave_id, programme_id=self.programme_id, country=country,
            wave_name=f"{key or country} wave", region=region, committee=f"committee-{country.lower()}",
            starts_on=starts, ends_on=date(2026, 12, 31), target_pairs=target,
        ), T0 - timedelta(days=50), country)
        return wave_id

    def enrol(self, country: str, role: str, *, wave: str | None = None, qualified: bool = True,
              **profile_overrides: Any) -> Person:
        person = Person(uuid.uuid4(), self.waves[wave or country], country)
        r = en.Role(role)
        at = T0 - timedelta(days=30)
        self._emit("enrollment", person.participant_id, en.ParticipantEnrolled(
            actor=ACTOR, participant_id=person.participant_id, programme_id=self.programme_id,
            wave_id=person.wave_id, country=country, role=r, profile=profile(r, **profile_overrides),
            employee_ref=f"E-{person.participant_id.hex[:6]}", display_name="Someone", email="someone@example.com",
            motivation="To learn.",
        ), at, country)
        if r is en.Role.MENTOR:
            rule = en.QualificationRule(min_case_study_score=50, min_teaching_ease=3, min_interpersonal_skills=3,
                                        training_required=False)
            self._emit("enrollment", person.participant_id, en.MentorQualificationAssessed(
                actor=ACTOR, participant_id=person.participant_id, programme_id=self.programme_id,
                wave_id=person.wave_id, country=country, rule=rule, qualified=qualified,
                scores=en.QualificationScores(case_study_score=80, teaching_ease=4, interpersonal_skills=4,
                                              training_completed=True),
            ), at + timedelta(hours=1), country)
        return person

    def withdraw(self, person: Person) -> None:
        self._emit("enrollment", person.participant_id, en.ParticipantWithdrew(
            actor=ACTOR, participant_id=person.participant_id, programme_id=self.programme_id,
            wave_id=person.wave_id, country=person.country, role=en.Role.MENTEE, reason="No time.",
        ), T0, person.country)

    def transfer(self, person: Person, to: str) -> Person:
        """Move the person to the wave named ``to`` (its key); the person as it now is."""
        moved = Person(person.participant_id, self.waves[to], to[:2])
        self._emit("enrollment", person.participant_id, en.ParticipantTransferred(
            actor=ACTOR, participant_id=person.participant_id, programme_id=self.programme_id,
            wave_id=moved.wave_id, country=moved.country, role=en.Role.MENTEE,
            from_wave_id=person.wave_id, from_country=person.country,
        ), T0, moved.country)
        return moved

    def erase(self, person: Person) -> None:
        self._emit("enrollment", person.participant_id, en.ParticipantErased(
            actor=ACTOR, participant_id=person.participant_id, programme_id=self.programme_id,
            wave_id=person.wave_id, country=person.country, role=en.Role.MENTEE,
        ), T0 + timedelta(days=1), person.country)

    # -- matching -----------------------------------------------------------------

    def _pair_event(self, cls: type[ma.PairEvent], pair: Pair, at: datetime, **fields: Any) -> None:
        self._emit("matching", pair.pair_id, cls(
            actor=ACTOR, pair_id=pair.pair_id, programme_id=pair.programme_id, wave_id=pair.mentee.wave_id,
            country=pair.mentee.country, people=pair.ref, **fields,
        ), at, pair.mentee.country)

    def propose(self, mentee: Person, mentor: Person, *, score: float = 75.0, themes_raw: float = 0.8,
                at: datetime = T0 - timedelta(days=2)) -> Pair:
        """A pair proposed by a matching run, not (yet) formed."""
        pair = Pair(uuid.uuid4(), mentee, mentor, self.programme_id)
        breakdown = [ma.CriterionPoints(criterion="theme_fit", weight=1.0, raw=themes_raw, points=themes_raw * 100,
                                        detail="themes")]
        self._pair_event(ma.PairProposed, pair, at, origin=ma.ProposalOrigin.RUN, score=score, breakdown=breakdown)
        return pair

    def pair(self, mentee: Person, mentor: Person, *, score: float = 75.0, themes_raw: float = 0.8,
             formed: datetime = T0) -> Pair:
        pair = self.propose(mentee, mentor, score=score, themes_raw=themes_raw, at=formed - timedelta(days=2))
        self._pair_event(ma.PairAccepted, pair, formed - timedelta(days=1), side=ma.Side.HR)
        self._pair_event(ma.PairFormed, pair, formed, score=score, confirmed_by=ma.Side.HR)
        return pair

    def complete(self, pair: Pair, at: datetime) -> None:
        self._pair_event(ma.PairCompleted, pair, at)

    def dissolve(self, pair: Pair, at: datetime) -> None:
        self._pair_event(ma.PairDissolved, pair, at, reason=ma.DissolutionReason.NO_CHEMISTRY, side=ma.Side.HR)

    # -- sessions -----------------------------------------------------------------

    def _fact(self, pair: Pair) -> dict[str, Any]:
        return dict(actor=ACTOR, pair_id=pair.pair_id, programme_id=pair.programme_id, wave_id=pair.mentee.wave_id,
                    country=pair.mentee.country, mentee_id=pair.mentee.participant_id,
                    mentor_id=pair.mentor.participant_id)

    def _scheduled(self, pair: Pair, at: datetime) -> uuid.UUID:
        session_id = uuid.uuid4()
        self._emit("sessions", session_id, se.SessionScheduled(
            **self._fact(pair), session_id=session_id, scheduled_by=se.Member.MENTEE, starts_at=at,
            duration_minutes=45, format=se.SessionFormat.REMOTE, planned_topics=["data_ai"],
        ), at - timedelta(days=7), pair.mentee.country)
        return session_id

    def held(self, pair: Pair, at: datetime, minutes: int = 45) -> uuid.UUID:
        session_id = self._scheduled(pair, at)
        pair.held += 1
        self._emit("sessions", session_id, se.SessionHeld(
            **self._fact(pair), session_id=session_id, held_at=at, actual_minutes=minutes, preparation_minutes=15,
            topics_covered=["data_ai"], sequence_in_pair=pair.held,
        ), at + timedelta(hours=1), pair.mentee.country)
        return session_id

    def cancelled(self, pair: Pair, at: datetime, late: bool = True) -> None:
        session_id = self._scheduled(pair, at)
        self._emit("sessions", session_id, se.SessionCancelled(
            **self._fact(pair), session_id=session_id, cancelled_by=se.Member.MENTOR, reason="Busy.",
            notice_hours=2.0, late=late,
        ), at - timedelta(hours=2), pair.mentee.country)

    def no_show(self, pair: Pair, at: datetime) -> None:
        session_id = self._scheduled(pair, at)
        self._emit("sessions", session_id, se.SessionNoShow(
            **self._fact(pair), session_id=session_id, absent=se.Member.MENTEE, reported_by=se.Member.MENTOR,
        ), at + timedelta(hours=1), pair.mentee.country)

    def check_in(self, pair: Pair, at: datetime, mood: int, member: se.Member = se.Member.MENTEE) -> None:
        check_in_id = uuid.uuid4()
        self._emit("sessions", check_in_id, se.CheckInRecorded(
            **self._fact(pair), check_in_id=check_in_id, member=member, mood=mood,
        ), at, pair.mentee.country)

    def over_budget(self, pair: Pair, month: date, at: datetime) -> None:
        mentor = pair.mentor
        stream = f"budget:{mentor.participant_id}:{month:%Y-%m}"
        common = dict(actor=ACTOR, mentor_id=mentor.participant_id, programme_id=self.programme_id,
                      country=mentor.country, month=month, budget_minutes=480)
        self._emit("sessions", stream, se.MentorTimeLogged(
            **common, pair_id=pair.pair_id, minutes=500, total_minutes=500), at, mentor.country)
        self._emit("sessions", stream, se.MentorBudgetExceeded(**common, total_minutes=500), at, mentor.country)

    # -- evaluation ---------------------------------------------------------------

    def k_anonymity(self, k: int) -> None:
        self._emit("evaluation", f"settings-{self.programme_id}", evl.EvaluationSettingsChanged(
            actor=ACTOR, programme_id=self.programme_id, k_anonymity=k), T0 - timedelta(days=59), None)

    def survey(self, pair: Pair, kind: str, phase: str, *, due: datetime, scale: list[int] | None,
               answered: datetime | None = None) -> None:
        """Assign a survey to the mentee; answer it with ``scale`` at ``answered`` (None: left open)."""
        assignment_id = uuid.uuid4()
        common = dict(actor=ACTOR, assignment_id=assignment_id, programme_id=self.programme_id,
                      wave_id=pair.mentee.wave_id, country=pair.mentee.country, pair_id=pair.pair_id,
                      participant_id=pair.mentee.participant_id)
        template_id = uuid.uuid5(self.programme_id, kind)
        self._emit("evaluation", assignment_id, evl.SurveyAssigned(
            **common, template_id=template_id, template_version=1, kind=evl.SurveyKind(kind), phase=evl.Phase(phase),
            respondent=evl.Respondent.MENTEE, due_at=due,
        ), due - timedelta(days=7), pair.mentee.country)
        if answered is not None and scale is not None:
            answers = [evl.AnswerItem(question_id=f"q{i}", kind=evl.QuestionKind.SCALE, scale=v) for i, v in enumerate(scale)]
            self._emit("evaluation", assignment_id, evl.SurveyAnswered(
                **common, template_id=template_id, template_version=1, kind=evl.SurveyKind(kind),
                phase=evl.Phase(phase), answers=answers,
            ), answered, pair.mentee.country)


def health_scenario() -> tuple[Scenario, dict[str, Pair]]:
    """Nine pairs, one per pair-health verdict (see test_insights_pair_health)."""
    sc = Scenario()
    sc.programme()
    for country, region in (("FR", "Europe"), ("DE", "Europe"), ("BR", "Americas")):
        sc.wave(country, region)

    def pair(mentee_country: str, mentor_country: str | None = None, **kw):
        mentee = sc.enrol(mentee_country, "mentee")
        mentor = sc.enrol(mentor_country or mentee_country, "mentor")
        return sc.pair(mentee, mentor, **kw)

    p = {
        "healthy": pair("FR"),
        "no_first": pair("FR"),
        "mood": pair("FR"),
        "cancels": pair("FR"),
        "overdue": pair("FR"),
        "dormant": pair("DE", formed=T0 - timedelta(days=100)),
        "ended": pair("DE"),
        "feedback": pair("DE"),
        "budget": pair("BR"),
    }
    sc.held(p["healthy"], T0 + timedelta(days=3))
    sc.held(p["healthy"], T0 + timedelta(days=20))
    sc.held(p["mood"], T0 + timedelta(days=5))
    sc.check_in(p["mood"], T0 + timedelta(days=10), mood=4)
    sc.check_in(p["mood"], T0 + timedelta(days=25), mood=1)
    sc.held(p["cancels"], T0 + timedelta(days=2))
    sc.cancelled(p["cancels"], T0 + timedelta(days=9))
    sc.cancelled(p["cancels"], T0 + timedelta(days=16))
    sc.held(p["overdue"], T0 + timedelta(days=4))
    sc.survey(p["overdue"], "digital_maturity", "pre", due=T0 + timedelta(days=10), scale=None)
    sc.held(p["dormant"], T0 - timedelta(days=95))
    sc.held(p["ended"], T0 + timedelta(days=1))
    sc.complete(p["ended"], T0 + timedelta(days=28))
    sc.held(p["feedback"], T0 + timedelta(days=4))
    sc.held(p["feedback"], T0 + timedelta(days=18))
    sc.survey(p["feedback"], "session_feedback", "session", due=T0 + timedelta(days=8), scale=[4, 5],
              answered=T0 + timedelta(days=5))
    sc.survey(p["feedback"], "session_feedback", "session", due=T0 + timedelta(days=22), scale=[2, 2],
              answered=T0 + timedelta(days=19))
    sc.held(p["budget"], T0 + timedelta(days=10))
    sc.over_budget(p["budget"], date(2026, 3, 1), T0 + timedelta(days=15))
    return sc, p


@dataclass
class Pipeline:
    """Source event stores -> outbox relays -> broker -> the insights projection."""

    pool: asyncpg.Pool
    bootstrap: str
    topic_prefix: str
    stores: dict[str, EventStore]  # context -> its store
    projection: InsightsProjection
    runner: ConsumerRunner

    async def feed(self, scenario: Scenario, *, shuffle_seed: int | None = None) -> None:
        """Append every event of ``scenario`` to its context's store, then wait
        until the projection has applied them all. ``shuffle_seed`` interleaves
        the streams at random (each stream keeps its order, as Kafka keeps it)."""
        events = scenario.events if shuffle_seed is None else interleaved(scenario.events, shuffle_seed)
        for stream, envelope in events:
            await self.stores[envelope.context].append(stream, None, [envelope])
        ids = [e.id for _, e in scenario.events]
        await self.wait_applied(ids)
        scenario.events.clear()

    async def wait_applied(self, ids: list[uuid.UUID]) -> None:
        sql = f"SELECT count(*) FROM {self.projection.schema}.applied_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])"

        async def done() -> bool:
            return await self.pool.fetchval(sql, self.projection.name, ids) == len(ids)

        await wait_for(done, timeout=60)


def interleaved(events: list[tuple[str, Envelope]], seed: int) -> list[tuple[str, Envelope]]:
    queues: dict[str, list[tuple[str, Envelope]]] = {}
    for item in events:
        queues.setdefault(item[0], []).append(item)
    rng, result = random.Random(seed), []
    while queues:
        stream = rng.choice(sorted(queues))
        result.append(queues[stream].pop(0))
        if not queues[stream]:
            del queues[stream]
    return result


async def migrated(pool: asyncpg.Pool, name: str, *dirs) -> str:
    async with pool.acquire() as conn:
        await migrate(conn, name, *dirs)
    return name


@asynccontextmanager
async def pipeline(
    pool: asyncpg.Pool,
    bootstrap: str,
    *,
    insights_schema: str,
    source_schemas: dict[str, str],
    topic_prefix: str,
    clock=lambda: NOW,
) -> AsyncIterator[Pipeline]:
    """Relays for each source schema and the insights consumer, running until exit."""
    await migrated(pool, insights_schema, SERVICE.migrations)
    stores = {}
    for context, name in source_schemas.items():
        await migrated(pool, name)
        stores[context] = EventStore(pool, name, topic_prefix=topic_prefix, service=context)
    projection = InsightsProjection(insights_schema, clock=clock)
    runner = ConsumerRunner(pool, insights_schema, projection, bootstrap, service="insights", topic_prefix=topic_prefix,
                            session_timeout_ms=1000, fetch_max_wait_ms=50, retry_backoff_s=0.01)
    stop = asyncio.Event()
    relays = {name: OutboxRelay(pool, name, bootstrap, poll_interval_s=0.05) for name in set(source_schemas.values())}
    tasks = [asyncio.create_task(r.run(stop)) for r in relays.values()] + [asyncio.create_task(runner.run(stop))]
    try:
        await runner.wait_assigned()
        yield Pipeline(pool, bootstrap, topic_prefix, stores, projection, runner)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


class Client:
    """The insights API over ASGI, with tokens of any role."""

    def __init__(self, app, data_dir) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://insights")
        self.data_dir = data_dir

    def auth(self, org: str, *roles: str, countries: tuple[str, ...] = ()) -> dict[str, str]:
        token = mint("user-1", org, roles or ("hr_admin",), countries, data_dir=self.data_dir)
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, org: str, *roles: str, countries: tuple[str, ...] = (), **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.auth(org, *roles, countries=countries))

    async def ok(self, path: str, org: str, *roles: str, countries: tuple[str, ...] = (), **params: Any) -> Any:
        response = await self.get(path, org, *roles, countries=countries, **params)
        assert response.status_code == 200, response.text
        return response.json()


def api_client(pool: asyncpg.Pool, insights_schema: str, data_dir, clock=lambda: NOW) -> Client:
    settings = Settings(data_dir=data_dir)
    store = EventStore(pool, insights_schema, service="insights")
    ctx = ServiceContext("insights", pool, store, "", settings, TokenVerifier.from_settings(settings))
    return Client(create_app(ctx, clock=clock), data_dir)


async def table_rows(pool: asyncpg.Pool, schema: str, table: str) -> list[dict[str, Any]]:
    """Every row of a table in a stable order (all columns), for comparisons."""
    rows = await pool.fetch(f"SELECT * FROM {schema}.{table} t ORDER BY t::text")
    return [dict(r) for r in rows]


@dataclass
class InsightsEnv:
    pipeline: Pipeline
    api: Client
    schema: str


@pytest.fixture(scope="module")
async def insights_env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[InsightsEnv]:
    """One pipeline and API per test module (a consumer group join costs
    about half a session timeout): tests separate their data by organisation."""
    suffix = uuid.uuid4().hex[:10]
    insights_schema, source = f"ti_{suffix}", f"ts_{suffix}"
    async with pipeline(
        pool, kafka_bootstrap, insights_schema=insights_schema,
        source_schemas={c: source for c in SOURCES}, topic_prefix=f"t{suffix}.",
    ) as pipe:
        yield InsightsEnv(pipe, api_client(pool, insights_schema, tmp_path_factory.mktemp("keys")), insights_schema)
    for name in (insights_schema, source):
        await pool.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
