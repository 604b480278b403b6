"""Rebuild a read model from the log.

The log of each context is its service's event store (PostgreSQL), not the
broker: the embedded broker keeps no history, and a production cluster may
not keep it for ever either. A rebuild therefore (1) empties the read model
and forgets what it applied, in one transaction, and (2) asks each source
service to publish its whole log again. The projection applies every event
once; every other consumer skips the re-published events it has applied.

A service's own read tables, written in the transactions that append its
events, are rebuilt at once instead (``READ_TABLES``): in one transaction
that holds writers back, from its own log.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from libs.eventstore.store import EventStore
from libs.messaging.consumer import rebuild
from libs.runtime.platform import token_verifier, vault_pool_scope
from libs.gdpr.masters import MasterKeys
from libs.gdpr.personal import PersonalData
from libs.gdpr.vault import KeyVault
from libs.runtime.service import ServiceContext, ServiceDefinition
from libs.settings import Settings


#: The name under which a service's inline read tables are rebuilt (at once,
#: in one transaction, from its own log; ``ServiceDefinition.rebuild_read_tables``).
READ_TABLES = "read-tables"


class UnknownReadModel(LookupError):
    pass


def offline_context(
    pool: asyncpg.Pool, settings: Settings, service: ServiceDefinition, vault_pool: asyncpg.Pool
) -> ServiceContext:
    """A service's context for a command run outside ``binome up`` (no broker):
    enough to build its projections and apply events through them."""
    vault = KeyVault(vault_pool, settings.vault_schema, MasterKeys.from_settings(settings))
    return ServiceContext(
        service.name,
        pool,
        # Opens sealed personal values: a rebuilt read model shows what the
        # live one shows, erased people included (as erased).
        EventStore(pool, service.schema, topic_prefix=settings.topic_prefix, personal=PersonalData(vault)),
        bootstrap="",
        settings=settings,
        verifier=token_verifier(settings),
        vault=vault,
    )


async def replay(
    pool: asyncpg.Pool,
    settings: Settings,
    services: Sequence[ServiceDefinition],
    service_name: str,
    projection_name: str | None = None,
) -> dict[str, int]:
    """Rebuild one projection (or all of a service's); return events queued per
    projection (for ``READ_TABLES``: events applied, the rebuild is done)."""
    by_name = {s.name: s for s in services}
    if service_name not in by_name:
        raise UnknownReadModel(f"no service {service_name!r}; known: {sorted(by_name)}")
    service = by_name[service_name]
    async with vault_pool_scope(settings, pool) as vault_pool:
        return await _replay(pool, settings, by_name, service, projection_name, vault_pool)


async def _replay(
    pool: asyncpg.Pool,
    settings: Settings,
    by_name: dict[str, ServiceDefinition],
    service: ServiceDefinition,
    projection_name: str | None,
    vault_pool: asyncpg.Pool,
) -> dict[str, int]:
    ctx = offline_context(pool, settings, service, vault_pool)
    projections = [p for p in service.projections(ctx) if projection_name in (None, p.name)]
    inline = service.rebuild_read_tables if projection_name in (None, READ_TABLES) else None
    if not projections and inline is None:
        raise UnknownReadModel(f"{service.name} has no projection {projection_name!r}")

    queued: dict[str, int] = {}
    if inline is not None:
        queued[READ_TABLES] = await inline(ctx)
    for projection in projections:
        await rebuild(pool, service.schema, projection)
        total = 0
        for context in projection.contexts:
            if context in by_name:  # a context's log is its service's store
                source = by_name[context]
                total += await EventStore(pool, source.schema, topic_prefix=settings.topic_prefix).republish_all()
        queued[projection.name] = total
    return queued
