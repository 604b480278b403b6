"""The matching service: the candidate pool, matching runs, the choice flow
and the life of pairs (topic ``binome.matching.events``). Its API is
documented in ``services/matching/README.md``.

    domain/         profiles, explainable scores, the exact solver, the Pair aggregate; pure Python
    service_layer/  runs, choice, pair lifecycle, pool queries, views (reads with visibility rules)
    adapters/       repository, read tables, mapping
    consumers/      the candidate pool (enrollment events -> matching's copy), reporting lines (HR directory)
    entrypoints/    the FastAPI app (/v1) and its request/response models
    migrations/     the pool and read tables ({schema} = the service's schema)
"""

from __future__ import annotations

from pathlib import Path

from libs.gdpr.compaction import compaction_workers
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.matching.adapters.read_tables import ReadTables
from services.matching.bootstrap import Matching
from services.matching.consumers.reporting_lines import ReportingLines
from services.matching.entrypoints.api import create_app
from services.matching.service_layer.retention import RetentionWorker, system_clock


async def rebuild_read_tables(ctx: ServiceContext) -> int:
    return await Matching(ctx.pool, ctx.store).rebuild_read_tables()


def projections(ctx: ServiceContext) -> list:
    return [Matching(ctx.pool, ctx.store).candidate_pool(), ReportingLines(ctx.store.schema)]


def workers(ctx: ServiceContext) -> list:
    """GDPR retention of ended pairs' notes (service_layer/retention.py), on
    the service's clock; erasures completed on disk (libs/gdpr/compaction.py)."""
    if ctx.vault is None:
        return []
    clock = getattr(ctx, "clock", None) or system_clock
    retention = RetentionWorker(Matching(ctx.pool, ctx.store), ctx.vault, clock)
    return [("notes retention", retention.run), *compaction_workers(ctx, projections(ctx))]


SERVICE = ServiceDefinition(
    "matching",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    rebuild_read_tables=rebuild_read_tables,
    read_tables=ReadTables,
    exports_personal_data=True,
    workers=workers,
)
