"""The evaluation service: survey templates, assignments, answers, committed
actions and results (pre/post digital maturity, k-anonymous aggregates).
It learns pairs from matching, held sessions from sessions, and programme
languages and wave regions from enrollment (``consumers/intake.py``).

    domain/         templates, answers, assignments and results; pure Python
    service_layer/  command handlers, views
    adapters/       event-sourced repository, read-table projector, reference copies
    consumers/      the intake (other contexts' events -> copies, surveys to assign)
    entrypoints/    the FastAPI app (/v1) and its request/response models
    migrations/     the read tables ({schema} = the service's schema)
"""

from __future__ import annotations

from pathlib import Path

from libs.gdpr.compaction import compaction_workers
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.evaluation.adapters.projector import Projector
from services.evaluation.bootstrap import Evaluation
from services.evaluation.entrypoints.api import create_app


async def rebuild_read_tables(ctx: ServiceContext) -> int:
    return await Evaluation(ctx.pool, ctx.store).rebuild_read_tables()


def projections(ctx: ServiceContext) -> list:
    return [Evaluation(ctx.pool, ctx.store).intake()]


SERVICE = ServiceDefinition(
    "evaluation",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    rebuild_read_tables=rebuild_read_tables,
    read_tables=Projector,
    exports_personal_data=True,
    workers=lambda ctx: compaction_workers(ctx, projections(ctx)),
)
