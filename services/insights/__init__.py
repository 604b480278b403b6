"""The insights service: read models only (no write model, no events of its
own), kept from every context's events and rebuilt from the log with
``binome replay insights``.

    consumers/    the insights projection (one consumer group)
    facts/        its per-context fact writers (on_<Event> methods) and pair_activity
    health/       pair-health rules (pure), loading facts, business gauges
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
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.insights.entrypoints.api import create_app
from services.insights.consumers.insights import InsightsProjection


def projections(ctx: ServiceContext) -> list[InsightsProjection]:
    return [InsightsProjection(ctx.store.schema, clock=ctx.clock)]


SERVICE = ServiceDefinition(
    "insights",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    workers=lambda ctx: compaction_workers(ctx, projections(ctx)),
)
