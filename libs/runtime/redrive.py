"""``binome redrive CONSUMER [--event ID | --all]``: apply parked events again.

The consumer is a projection's name; the service that declares it owns the
``dead_letters`` rows (libs/messaging/deadletters.py does the work, as for the
ops API). It runs with no broker: the rows hold the records themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from libs.messaging.deadletters import RedriveResult, Redriver
from libs.runtime.platform import vault_pool_scope
from libs.runtime.replay import UnknownReadModel, offline_context
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings


async def redrive(
    pool: asyncpg.Pool,
    settings: Settings,
    services: Sequence[ServiceDefinition],
    consumer: str,
    event_id: uuid.UUID | None = None,
) -> list[RedriveResult]:
    """Redrive ``consumer``'s dead letters (one event, or all), in one transaction."""
    async with vault_pool_scope(settings, pool) as vault_pool:
        known = []
        for service in services:
            ctx = offline_context(pool, settings, service, vault_pool)
            projections = {p.name: p for p in service.projections(ctx)}
            if consumer in projections:
                redriver = Redriver(pool, service.schema, projections, personal=ctx.store.personal)
                async with pool.acquire() as conn, conn.transaction():
                    return await redriver.redrive(conn, consumer, event_id=event_id)
            known += projections
    raise UnknownReadModel(f"no projection {consumer!r}; known: {', '.join(sorted(known))}")
