"""The enrollment service: programmes, waves by country, participants, needs
questionnaires and mentor qualification. The write side every other service
learns from (topic ``binome.enrollment.events``).

    domain/         aggregates (Programme, Wave, Participant) and their rules; pure Python
    service_layer/  command handlers, bulk import, views (reads with visibility rules)
    adapters/       event-sourced repository, read-table projector, CSV/JSON rows, the HR directory's copy
    consumers/      the HR directory (binome.directory.events -> profiles, leavers)
    entrypoints/    the FastAPI app (/v1) and its request/response models
    migrations/     the read tables ({schema} = the service's schema)
"""

from __future__ import annotations

from pathlib import Path

from libs.gdpr.compaction import compaction_workers
from libs.runtime.scheduler import ScheduledJob
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.enrollment.adapters.projector import Projector
from services.enrollment.bootstrap import Enrollment
from services.enrollment.entrypoints.api import create_app
from services.enrollment.service_layer import calendar


def projections(ctx: ServiceContext) -> list:
    """The HR directory (consumers/directory.py)."""
    return [Enrollment(ctx.pool, ctx.store, ctx.vault).directory_feed()]


async def rebuild_read_tables(ctx: ServiceContext) -> int:
    return await Enrollment(ctx.pool, ctx.store, ctx.vault).rebuild_read_tables()


def workers(ctx: ServiceContext) -> list:
    """The wave calendar (service_layer/calendar.py), once per platform on its
    clock; erasures completed on disk (its compactor also rewrites the
    vault's key table)."""
    enrollment = Enrollment(ctx.pool, ctx.store, ctx.vault)
    waves = ScheduledJob(
        "enrollment.wave-calendar", ctx.pool, lambda now: calendar.run_due(enrollment, now), ctx.clock,
        ctx.settings.scheduler_interval_s,
    )
    return [("wave calendar", waves.run), *compaction_workers(ctx, (), rewrites_vault=True)]


SERVICE = ServiceDefinition(
    "enrollment",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    rebuild_read_tables=rebuild_read_tables,
    read_tables=Projector,
    exports_personal_data=True,
    workers=workers,
)
