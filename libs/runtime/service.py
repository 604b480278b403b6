"""What a service declares so that ``binome up`` (and its tests) can run it.

Each ``services/<name>/__init__.py`` exposes ``SERVICE = ServiceDefinition(...)``
and is listed in ``services.SERVICES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from libs.api.held_reads import NOTHING_HELD, HeldReads, NothingHeld
from libs.api.limits import BodySizeLimit, RateLimits
from libs.api.shedding import InFlight, LoadShedding
from libs.audit.api import install_audit
from libs.audit.spool import AuditSpool
from libs.audit.trail import AuditTrail
from libs.auth.tokens import TokenVerifier
from libs.domain.projector import InlineProjector
from libs.eventstore.store import EventStore
from libs.gdpr.vault import KeyVault
from libs.messaging.consumer import Projection
from libs.messaging.deadletters import Redriver
from libs.messaging.deadletters_api import install_dead_letters
from libs.observability.health import ReadinessCheck, add_readiness_checks
from libs.runtime.clock import Clock, system_clock
from libs.settings import Settings


@dataclass
class ServiceContext:
    """What a running service gets: its pool, its store, the broker, auth."""

    name: str
    pool: asyncpg.Pool
    store: EventStore
    bootstrap: str
    settings: Settings
    verifier: TokenVerifier
    #: The GDPR key vault (libs/gdpr): data keys of participants, outside the log.
    vault: KeyVault | None = None
    #: "Now" for the service (libs/runtime/clock.py): the system clock, or the
    #: platform's dev clock that ``binome demo`` moves forward.
    clock: Clock = system_clock
    #: The platform's one per-client and per-source budget (libs/api/limits.py),
    #: shared by every service it runs; None: the app gets its own.
    rate_limits: RateLimits | None = None
    #: Checks the platform adds to the service's /readyz (the broker, a shared
    #: database check), beside those the service's app declares.
    readiness_checks: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    #: Under ``binome up``, where this process spools its audit records
    #: (libs/audit/spool.py); None: each record is written at once.
    audit_spool: AuditSpool | None = None
    #: Reads its API may answer again without reading them (libs/api/held_reads.py):
    #: in the HTTP workers of ``binome up --workers N``; elsewhere nothing is held.
    held_reads: HeldReads | NothingHeld = NOTHING_HELD


@dataclass(frozen=True)
class ServiceDefinition:
    name: str  # also its schema, its event source (/binome/<name>) and URL prefix
    create_app: Callable[[ServiceContext], FastAPI]
    migrations: Path | None = None
    #: Read models this service keeps from other contexts' events.
    projections: Callable[[ServiceContext], Sequence[Projection]] = field(default=lambda ctx: ())
    #: Read tables the service writes in the same transaction as its own
    #: events (not through Kafka): rebuilds them from its log and returns the
    #: number of events applied. ``binome replay SERVICE`` runs it.
    rebuild_read_tables: Callable[[ServiceContext], Awaitable[int]] | None = None
    #: The class that writes those read tables (``libs/domain/projector.py``):
    #: ``binome events`` lists it as the service's inline projector.
    read_tables: type[InlineProjector] | None = None
    #: Serves its part of a participant's GDPR export (libs/gdpr/export.py).
    exports_personal_data: bool = False
    #: Background tasks besides relay and consumers (e.g. matching's notes
    #: retention): (name, run) pairs; ``binome up`` supervises each ``run(stop)``.
    workers: Callable[[ServiceContext], Sequence[tuple[str, Callable[[asyncio.Event], Awaitable[None]]]]] = field(
        default=lambda ctx: ()
    )
    #: Root paths where ``binome up`` serves the same app besides ``/<name>``
    #: (the directory's SCIM routes at ``/scim/v2``, where connectors expect them).
    also_mounted_at: tuple[str, ...] = ()

    @property
    def schema(self) -> str:
        return self.name

    def build_app(self, ctx: ServiceContext) -> FastAPI:
        """The service's app with the protections every Binome API has: an
        audit trail of every /v1 request (``GET /v1/audit``), a body size
        limit, per-client rate limits (under ``binome up``, the platform's
        one budget shared by every service) and a bound on the requests it
        runs at once (outermost: a shed request costs nothing else); with
        projections, the ops routes of their dead letters (``GET
        /v1/dead-letters``). ``binome up`` and the tests build apps through
        here, never with ``create_app`` alone."""
        app = self.create_app(ctx)
        projections = self.projections(ctx)
        if projections:  # GET /v1/dead-letters, POST /v1/dead-letters:redrive (ops)
            by_name = {p.name: p for p in projections}
            install_dead_letters(app, Redriver(ctx.pool, ctx.store.schema, by_name, personal=ctx.store.personal))
        # Added before the audit, so the audit wraps it and records its 413s.
        app.add_middleware(BodySizeLimit, max_bytes=ctx.settings.max_body_bytes)
        install_audit(app, AuditTrail(ctx.pool, ctx.store.schema, spool=ctx.audit_spool))
        app.state.rate_limits = ctx.rate_limits or RateLimits.from_settings(ctx.settings)
        # Kept on the app: binome up's ShedEarly reads the same slots.
        app.state.in_flight = InFlight(self.name, ctx.settings.max_concurrent_requests)
        app.add_middleware(LoadShedding, slots=app.state.in_flight)
        add_readiness_checks(app, ctx.readiness_checks)
        return app
