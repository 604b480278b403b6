"""The sessions service: a pair's meetings (scheduled, moved, cancelled,
held, missed), its check-ins, and each mentor's monthly time budget. Learns
pairs from matching and programme themes from enrollment; emits on topic
``binome.sessions.events``.

    domain/         Session, CheckIn, MentorMonth, ProgrammeRules and their rules; pure Python
    service_layer/  command handlers, views (reads with visibility rules)
    adapters/       event-sourced repository, own read-table projector
    consumers/      the pair directory (matching and enrollment events)
    entrypoints/    the FastAPI app (/v1) and its request/response models
    migrations/     the tables ({schema} = the service's schema)
"""

from __future__ import annotations

from pathlib import Path

from libs.gdpr.compaction import compaction_workers
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.sessions.adapters.projector import Projector
from services.sessions.consumers.pair_directory import PairDirectory
from services.sessions.bootstrap import Sessions
from services.sessions.entrypoints.api import create_app


async def rebuild_read_tables(ctx: ServiceContext) -> int:
    return await Sessions(ctx.pool, ctx.store).rebuild_read_tables()


def projections(ctx: ServiceContext) -> list[PairDirectory]:
    return [PairDirectory(ctx.store.schema)]


SERVICE = ServiceDefinition(
    "sessions",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    rebuild_read_tables=rebuild_read_tables,
    read_tables=Projector,
    exports_personal_data=True,
    workers=lambda ctx: compaction_workers(ctx, projections(ctx)),
)
