"""The webhooks of the notifications service on the real stack, and a real
HTTP receiver that verifies what it gets with ``standardwebhooks``.

``webhooks_env`` gives a migrated notifications schema with its app, a
*source* event store standing in for the other services (its events go
through the real outbox relay and broker), the service's fan-out consumer
and its delivery worker running, a GDPR vault, and the platform clock the
test moves (due times are on it).

``Receiver`` is an ``http.server`` in a thread on 127.0.0.1: it answers
``status`` to every POST whose Standard Webhooks signature verifies with one
of ``secrets`` (401 otherwise); ``stop()`` closes its port (a receiver that
is down: connection refused), ``start()`` opens the same port again.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from standardwebhooks import Webhook, WebhookVerificationError

from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.embedded.broker import free_port
from libs.events import new_envelope
from libs.events.contexts.enrollment import Actor
from libs.events.contexts.matching import PairDeclined, PairRef, Side
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.gdpr.masters import MasterKeys
from libs.gdpr.personal import PersonalData
from libs.gdpr.vault import KeyVault, migrate_vault
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.relay import OutboxRelay
from libs.runtime.clock import PlatformClock
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.notifications import SERVICE
from services.notifications.consumers.webhook_fanout import WebhookFanout
from services.notifications.service_layer.webhook_delivery import WebhookDeliverer
from services.notifications.service_layer.webhook_endpoints import Secrets

ORG, OTHER_ORG = "org-a", "org-b"
NOTE = "We never found a time that suited us both."


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    secrets: list[str] = field(default_factory=list)
    status: int = 204
    received: list[Received] = field(default_factory=list)  # verified
    refused: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def verifies(self, item: Received) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(item.body, item.headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                item = Received({k.lower(): v for k, v in self.headers.items()}, body)
                ok = receiver.verifies(item)
                (receiver.received if ok else receiver.refused).append(item)
                self.send_response(receiver.status if ok else 401)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.event["type"] == event_type]


@dataclass
class WebhooksEnv:
    pool: asyncpg.Pool
    schema: str
    store: EventStore
    source: EventStore
    client: httpx.AsyncClient
    clock: PlatformClock
    data_dir: Path
    deliverer: WebhookDeliverer
    ctx: ServiceContext

    def auth(self, *roles: str, countries: Iterable[str] = (), sub: str = "hr-1", org: str = ORG) -> dict[str, str]:
        token = mint(sub, org, roles or ("hr_admin",), countries, data_dir=self.data_dir)
        return {"Authorization": f"Bearer {token}"}

    async def register(self, receiver: Receiver, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
        """Register ``receiver`` (every matching event unless ``event_types``); it learns the secret."""
        response = await self.client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["binome.matching.*"], **body},
            headers=headers or self.auth(),
        )
        assert response.status_code == 201, response.text
        endpoint = response.json()
        receiver.secrets.append(endpoint["secret"])
        return endpoint

    async def declined(self, *, country: str = "FR", org: str = ORG, note: str = NOTE) -> uuid.UUID:
        """A ``PairDeclined`` (its ``note`` is personal: sealed at rest) in the
        matching log of ``org``; returns its event id."""
        pair_id = uuid.uuid4()
        wave_id = uuid.uuid4()
        people = PairRef(
            mentee_id=uuid.uuid4(), mentor_id=uuid.uuid4(), mentee_wave_id=wave_id, mentor_wave_id=wave_id,
            mentee_country=country, mentor_country=country,
        )
        event = PairDeclined(
            actor=Actor(subject="mentee-1"), pair_id=pair_id, programme_id=uuid.uuid4(), wave_id=wave_id,
            country=country, people=people, side=Side.MENTEE, note=note,
        )
        envelope = new_envelope(event, service="matching", subject=str(pair_id), tenant=org, country=country)
        envelope = envelope.model_copy(update={"time": self.clock()})  # on the platform clock, as the services do
        await self.source.append(str(pair_id), 0, [envelope])
        return envelope.id

    async def delivery(self, event_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.pool.fetchrow(
            f"SELECT * FROM {self.schema}.webhook_deliveries WHERE event_id = $1", event_id
        )

    async def events_of(self, event_type: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            f"SELECT envelope FROM {self.schema}.events WHERE type = $1 ORDER BY position", event_type
        )
        return [json.loads(r["envelope"]) for r in rows]


async def webhooks_env(pool: asyncpg.Pool, bootstrap: str, data_dir: Path) -> AsyncIterator[WebhooksEnv]:
    """Schemas of their own (the service's, the source log's, the vault's),
    the relay of the source log, the fan-out consumer, the delivery worker,
    the app over the service's schema (dev mode: receivers on 127.0.0.1)."""
    schema, source_schema = f"t_{uuid.uuid4().hex[:12]}", f"t_{uuid.uuid4().hex[:12]}"
    vault_schema = f"{schema}_vault"
    async with pool.acquire() as conn:
        await migrate(conn, schema, SERVICE.migrations)
        await migrate(conn, source_schema)
        await migrate_vault(conn, vault_schema)
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = Settings(data_dir=data_dir, dev_mode=True)
    vault = KeyVault(pool, vault_schema, MasterKeys.from_settings(settings))
    personal = PersonalData(vault)
    store = EventStore(pool, schema, topic_prefix=prefix, service="notifications", personal=personal)
    source = EventStore(pool, source_schema, topic_prefix=prefix, service="matching", personal=personal)
    clock = PlatformClock()
    fanout = WebhookFanout(schema, clock=clock, name=f"webhooks-{uuid.uuid4().hex[:8]}")
    consumer = ConsumerRunner(
        pool, schema, fanout, bootstrap, service="notifications", topic_prefix=prefix,
        session_timeout_ms=1000, fetch_max_wait_ms=50, retry_backoff_s=0.01, personal=personal,
    )
    deliverer = WebhookDeliverer(pool, store, Secrets(vault), clock, dev_mode=True, poll_s=0.05)
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(OutboxRelay(pool, source_schema, bootstrap, poll_interval_s=0.05).run(stop)),
        asyncio.create_task(consumer.run(stop)),
        asyncio.create_task(deliverer.run(stop)),
    ]
    ctx = ServiceContext(
        "notifications", pool, store, bootstrap, settings, TokenVerifier.from_settings(settings), vault, clock=clock
    )
    transport = httpx.ASGITransport(app=SERVICE.build_app(ctx))
    try:
        await consumer.wait_assigned()
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications", timeout=30) as client:
            yield WebhooksEnv(pool, schema, store, source, client, clock, data_dir, deliverer, ctx)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        for name in (schema, source_schema, vault_schema):
            await pool.execute(f"DROP SCHEMA {name} CASCADE")
