"""The insights service: read models kept from every context's events and
rebuilt from the log with ``binome replay insights``, and one fact of its
own: ``PairNeedsAttention``, when the daily evaluation of pair health finds
a pair worse than the day before (health/watch.py).

    consumers/    the insights projection (one consumer group)
    facts/        its per-context fact writers (on_<Event> methods) and pair_activity
    health/       pair-health rules (pure), loading facts, business gauges, the daily watch
    network/      the cross-silo graph (networkx) and its exports
    rollout/      the dashboard per programme/region/country/wave and its chart
    factors/      success factors: effect sizes and confidence intervals
    views.py      reads with the caller's visibility
    entrypoints/  the FastAPI app (/v1)
    migrations/   the read tables ({schema} = the service's schema)
"""

from __future__ import annotations

from pathlib import Path

from libs.gdpr.compaction import compaction_workers
from libs.runtime.scheduler import ScheduledJob
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.insights.entrypoints.api import create_app
from services.insights.consumers.insights import InsightsProjection
from services.insights.health.watch import HealthWatch


def projections(ctx: ServiceContext) -> list[InsightsProjection]:
    return [InsightsProjection(ctx.store.schema, clock=ctx.clock)]


def workers(ctx: ServiceContext) -> list:
    """The daily evaluation of pair health (once per platform, on its clock),
    and erasures completed on disk."""
    watch = ScheduledJob(
        "insights.health-watch", ctx.pool, HealthWatch(ctx.pool, ctx.store).run_due, ctx.clock,
        ctx.settings.scheduler_interval_s,
    )
    return [("pair health watch", watch.run), *compaction_workers(ctx, projections(ctx))]


SERVICE = ServiceDefinition(
    "insights",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    workers=workers,
)
