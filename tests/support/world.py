"""A world of two countries in every service, built through the real APIs
and the real event flow, for the isolation matrix and the OpenAPI fuzzing.

``binome up``'s ``Platform`` runs every service of ``services.SERVICES``
over the test database and broker: each service's schema, its outbox relay,
its consumers. The world is made only through the HTTP APIs (enrollment ->
relay -> broker -> matching's pool; a run and HR confirmations in matching
-> sessions, evaluation and insights learn the pairs), so every row the
matrix probes is one the services wrote themselves.

In each country (FR and DE): a wave, a mentee and a mentor (qualified), a
matching run and its formed pair, a scheduled session, a mentee check-in, the
mentee's pre-questionnaire assignment (evaluation's intake makes it) and the
pair-health row of insights. FR also has an *outsider*: a mentee enrolled
after the run, in no pair, whose token tries other people's records.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from starlette.routing import Mount

from libs.auth.devkeys import mint
from libs.runtime.platform import Platform
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings
from services import SERVICES
from tests.support.enrollment import mentee, mentor, wave_body
from tests.support.kafka import wait_for
from tests.support.matching import QUALIFIED

ORG = "org-iso"
OTHER_ORG = "org-elsewhere"
HR = ("hr_admin",)


#: Event types that workers record on their own, whatever requests arrive:
#: the notifications service's deliveries and the insights daily watch.
RECORDED_IN_THE_BACKGROUND = {
    f"binome.notifications.{name}.v1"
    for name in ("MessageQueued", "MessageDelivered", "DeliveryFailed", "WebhookDelivered", "WebhookDeliveryFailed")
} | {"binome.insights.PairNeedsAttention.v1"}


@dataclass
class CountryObjects:
    """The country-owned objects of one country, by the path/query parameter naming them."""

    country: str
    wave_id: str = ""
    mentee_id: str = ""
    mentor_id: str = ""
    run_id: str = ""
    pair_id: str = ""
    session_id: str = ""
    check_in_id: str = ""
    assignment_id: str = ""
    exclusion_id: str = ""

    def ids(self) -> dict[str, str]:
        """Parameter name -> the object it names (``participant_id``: the mentee)."""
        return {
            "country": self.country,
            "wave_id": self.wave_id,
            "participant_id": self.mentee_id,
            "mentee_id": self.mentee_id,
            "mentor_id": self.mentor_id,
            "run_id": self.run_id,
            "pair_id": self.pair_id,
            "session_id": self.session_id,
            "check_in_id": self.check_in_id,
            "assignment_id": self.assignment_id,
            "exclusion_id": self.exclusion_id,
        }


@dataclass
class World:
    platform: Platform
    client: httpx.AsyncClient  # the platform's app: each service under /<service>
    data_dir: Path
    programme_id: str = ""
    template_id: str = ""
    fr: CountryObjects = field(default_factory=lambda: CountryObjects("FR"))
    de: CountryObjects = field(default_factory=lambda: CountryObjects("DE"))
    outsider_id: str = ""  # an FR mentee in no pair

    # -- callers ------------------------------------------------------------------------

    def auth(self, *roles: str, countries: Iterable[str] = (), sub: str = "hr-1", org: str = ORG) -> dict[str, str]:
        token = mint(sub, org, roles or HR, countries, data_dir=self.data_dir)
        return {"Authorization": f"Bearer {token}"}

    def committee(self, country: str) -> dict[str, str]:
        return self.auth("regional_committee", countries=[country], sub=f"committee-{country.lower()}")

    def participant(self, participant_id: str) -> dict[str, str]:
        return self.auth("participant", sub=participant_id)

    # -- the services -------------------------------------------------------------------

    def app(self, service: str) -> FastAPI:
        """A service's own app, as the platform mounts it (with audit, limits)."""
        for route in self.client._transport.app.routes:  # type: ignore[attr-defined]  # noqa: SLF001
            if isinstance(route, Mount) and route.path == f"/{service}":
                return route.app  # type: ignore[return-value]
        raise KeyError(service)

    async def call(self, service: str, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, f"/{service}{path}", headers=headers, **kwargs)

    async def ok(self, service: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = await self.call(service, method, path, headers or self.auth(), json=body)
        assert response.is_success, f"{method} /{service}{path}: {response.status_code} {response.text}"
        return response.json()

    # -- what changed ---------------------------------------------------------------------

    async def event_counts(self) -> dict[tuple[str, str], int]:
        """(schema, event type) -> how many events of that type the schema
        holds, but for what background workers record on their own (a mail
        or webhook delivered, a pair found at risk by the daily watch): a
        request that changes nothing must not add any other event."""
        counts: dict[tuple[str, str], int] = {}
        for service in self.platform.services:
            rows = await self.platform.pool.fetch(
                f"SELECT type, count(*) AS n FROM {service.schema}.events WHERE NOT type = ANY($1::text[]) GROUP BY type",
                sorted(RECORDED_IN_THE_BACKGROUND),
            )
            counts.update({(service.schema, r["type"]): r["n"] for r in rows})
        return counts

    async def settled(self) -> None:
        """Wait until every outbox is empty and every consumer applied every event of its topics."""
        await wait_for(self._settled, timeout=60)

    async def _settled(self) -> bool:
        pool = self.platform.pool
        schemas = {s.name: s.schema for s in self.platform.services}
        for service in self.platform.services:
            if await pool.fetchval(f"SELECT count(*) FROM {service.schema}.outbox"):
                return False
            for projection in service.projections(self.platform.contexts[service.name]):
                for context in projection.contexts:
                    if context not in schemas:
                        continue
                    missing = await pool.fetchval(
                        f"""SELECT count(*) FROM {schemas[context]}.events ev WHERE NOT EXISTS (
                                SELECT 1 FROM {service.schema}.applied_events a
                                WHERE a.consumer = $1 AND a.event_id = ev.event_id)""",
                        projection.name,
                    )
                    if missing:
                        return False
        return True


async def _drop_schemas(pool: asyncpg.Pool, services: Iterable[ServiceDefinition], vault_schema: str) -> None:
    for name in [*(s.schema for s in services), vault_schema]:
        await pool.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@asynccontextmanager
async def platform_world(
    pool: asyncpg.Pool, database_url: str, bootstrap: str, data_dir: Path, *, populate: bool = True,
    **settings_overrides: Any,
) -> AsyncIterator[World]:
    """Every service on the real stack (the platform uses the services' own
    schema names, dropped before and after), and, with ``populate``, the world;
    ``settings_overrides`` are further ``Settings`` (e.g. a mail server)."""
    vault_schema = f"vault_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        data_dir=data_dir,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        vault_schema=vault_schema,
        consumer_session_timeout_ms=1000,
        consumer_fetch_max_wait_ms=50,
        relay_poll_interval_s=0.05,
        rate_limit="100000/minute",  # the matrix and the fuzzer call thousands of times as one client
        **settings_overrides,
    )
    await _drop_schemas(pool, SERVICES, vault_schema)
    platform = await Platform.start(settings, SERVICES)
    try:
        transport = httpx.ASGITransport(app=platform.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://binome", timeout=60) as client:
            world = World(platform, client, data_dir)
            if populate:
                await populate_world(world)
            yield world
    finally:
        await platform.shutdown()
        await _drop_schemas(pool, SERVICES, vault_schema)


async def populate_world(world: World) -> None:
    hr = world.auth()
    world.programme_id = (await world.ok("enrollment", "POST", "/v1/programmes", {"name": "Isolation", "mode": "reverse"}))[
        "programme_id"
    ]
    for objects, zone in ((world.fr, "Europe/Paris"), (world.de, "Europe/Berlin")):
        c = objects.country
        body = wave_body(c, name=f"{c} isolation wave")
        objects.wave_id = (await world.ok("enrollment", "POST", f"/v1/programmes/{world.programme_id}/waves", body))[
            "wave_id"
        ]
        path = f"/v1/waves/{objects.wave_id}/participants"
        objects.mentee_id = (await world.ok("enrollment", "POST", path, mentee(f"ISO-{c}-E", time_zone=zone)))[
            "participant_id"
        ]
        objects.mentor_id = (
            await world.ok("enrollment", "POST", path, mentor(f"ISO-{c}-M", time_zone=zone, capacity=1))
        )["participant_id"]
        await world.ok("enrollment", "POST", f"/v1/participants/{objects.mentor_id}/qualification", QUALIFIED)
    await world.settled()  # matching's pool holds everyone

    for objects in (world.fr, world.de):
        run = await world.ok("matching", "POST", "/v1/runs", {"wave_ids": [objects.wave_id]})
        assert len(run["pairs"]) == 1, run
        objects.run_id, objects.pair_id = run["run_id"], run["pairs"][0]["pair_id"]
        formed = await world.ok("matching", "POST", f"/v1/pairs/{objects.pair_id}:confirm")
        assert formed["status"] == "formed", formed
        people = {"mentee_id": objects.mentee_id, "mentor_id": objects.mentor_id}
        objects.exclusion_id = (await world.ok("matching", "POST", "/v1/exclusions", people))["exclusion_id"]
    outsider = mentee("ISO-FR-OUT", time_zone="Europe/Paris")
    world.outsider_id = (await world.ok("enrollment", "POST", f"/v1/waves/{world.fr.wave_id}/participants", outsider))[
        "participant_id"
    ]
    await world.settled()  # sessions, evaluation and insights know the pairs

    starts = (datetime.now(UTC) + timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    for objects in (world.fr, world.de):
        session = {"starts_at": starts.isoformat(), "duration_minutes": 45, "format": "remote", "planned_topics": []}
        objects.session_id = (await world.ok("sessions", "POST", f"/v1/pairs/{objects.pair_id}/sessions", session))[
            "session_id"
        ]
        check_in = await world.ok(
            "sessions", "POST", f"/v1/pairs/{objects.pair_id}/check-ins", {"mood": 4},
            world.participant(objects.mentee_id),
        )
        objects.check_in_id = check_in["check_in_id"]
        assignments = await world.ok("evaluation", "GET", f"/v1/assignments?pair_id={objects.pair_id}", headers=hr)
        assert assignments["items"], assignments
        objects.assignment_id = assignments["items"][0]["assignment_id"]
    templates = await world.ok("evaluation", "GET", f"/v1/programmes/{world.programme_id}/templates")
    world.template_id = templates["items"][0]["template_id"] if "items" in templates else templates[0]["template_id"]
    await world.settled()
    for objects in (world.fr, world.de):  # every service holds every object
        await world.ok("insights", "GET", f"/v1/pairs/{objects.pair_id}/health")
        await world.ok("sessions", "GET", f"/v1/check-ins/{objects.check_in_id}")
        await world.ok("evaluation", "GET", f"/v1/assignments/{objects.assignment_id}")
