"""Rebuild a read model from the log.

The log of each context is its service's event store (PostgreSQL), not the
broker: the embedded broker keeps no history, and a production cluster may
not keep it for ever either. A rebuild therefore (1) empties the read model
and forgets what it applied, in one transaction (``rebuild``), and (2) reads
the event store of every context the projection consumes and applies it in
batches (libs/messaging/replayer.py). Nothing is published again: no other
consumer is disturbed, and a running ``binome up`` keeps its live consumer,
which shares the claims in ``applied_events`` with the replay.

A service's own read tables, written in the transactions that append its
events, are rebuilt at once instead (``READ_TABLES``): in one transaction
that holds writers back, from its own log.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
from rich.progress import Progress

from libs.eventstore.store import EventStore
from libs.database import create_pool
from libs.messaging.consumer import Projection, rebuild
from libs.messaging.replay_workers import run_partitioned
from libs.messaging.replayer import BATCH_SIZE, Replayed, Replayer, Source
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
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int = 1,
    database_url: str | None = None,
) -> dict[str, Replayed]:
    """Rebuild one projection (or all of a service's); return what each replay
    did (for ``READ_TABLES``: the events its rebuild applied). ``progress``:
    a started rich progress display, given a task per projection.
    ``workers``: processes a projection that ``replays_by_stream`` is split
    among (the others of ``workers`` connect to ``database_url``)."""
    service = _service(services, service_name)
    async with vault_pool_scope(settings, pool) as vault_pool, _source_pools(settings, pool) as pools:
        ctx = offline_context(pool, settings, service, vault_pool)
        projections = [p for p in service.projections(ctx) if projection_name in (None, p.name)]
        inline = service.rebuild_read_tables if projection_name in (None, READ_TABLES) else None
        if not projections and inline is None:
            raise UnknownReadModel(f"{service.name} has no projection {projection_name!r}")

        done: dict[str, Replayed] = {}
        if inline is not None:
            started = time.perf_counter()
            applied = await inline(ctx)
            done[READ_TABLES] = Replayed(read=applied, applied=applied, seconds=time.perf_counter() - started)
        for projection in projections:
            replayer = _replayer(ctx, services, projection, pools, batch_size)
            if progress is not None:
                task = progress.add_task(projection.name, total=await _log_size(replayer.sources))
                replayer.on_advance = functools.partial(progress.advance, task)
            await rebuild(pool, service.schema, projection)
            parts = workers if getattr(projection, "replays_by_stream", False) else 1
            if parts > 1 and database_url is None:
                raise ValueError("a replay in several processes needs the database's URL")
            settings_for_parts = settings.model_copy(update={"database_url": database_url, "dev_mode": settings.in_dev_mode})
            recipe = functools.partial(_part_replayer, settings_for_parts, service.name, projection.name, batch_size)
            done[projection.name] = await run_partitioned(replayer, recipe, parts)
        return done


def _service(services: Sequence[ServiceDefinition], name: str) -> ServiceDefinition:
    by_name = {s.name: s for s in services}
    if name not in by_name:
        raise UnknownReadModel(f"no service {name!r}; known: {sorted(by_name)}")
    return by_name[name]


def _replayer(
    ctx: ServiceContext,
    services: Sequence[ServiceDefinition],
    projection: Projection,
    pools: Callable[[str], asyncpg.Pool],
    batch_size: int,
) -> Replayer:
    """``projection``'s replayer over the event store of each context it reads."""
    by_name = {s.name: s for s in services}
    sources = [
        Source(context, EventStore(pools(context), by_name[context].schema,
                                   topic_prefix=ctx.settings.topic_prefix, personal=ctx.store.personal))
        for context in projection.contexts
        if context in by_name  # a context's log is its service's store
    ]
    return Replayer(ctx.pool, by_name[ctx.name].schema, projection, sources, ctx.store.personal, batch_size=batch_size)


@contextlib.asynccontextmanager
async def _part_replayer(
    settings: Settings, service_name: str, projection_name: str, batch_size: int
) -> AsyncIterator[Replayer]:
    """One part of a replay split among processes, built in its own process
    (libs/messaging/replay_workers.py) with pools of its own."""
    from services import SERVICES

    service = _service(SERVICES, service_name)
    assert settings.database_url is not None
    async with await create_pool(settings.database_url, min_size=1, max_size=4) as pool, \
            vault_pool_scope(settings, pool) as vault_pool, _source_pools(settings, pool) as pools:
        ctx = offline_context(pool, settings, service, vault_pool)
        (projection,) = [p for p in service.projections(ctx) if p.name == projection_name]
        yield _replayer(ctx, SERVICES, projection, pools, batch_size)


async def _log_size(sources: Sequence[Source]) -> int:
    """Events in the sources now (the bar's total; the logs may still grow)."""
    total = 0
    for source in sources:
        total += await source.store.pool.fetchval(f"SELECT count(*) FROM {source.store.schema}.events")
    return total


@contextlib.asynccontextmanager
async def _source_pools(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Callable[[str], asyncpg.Pool]]:
    """The pool of each context's event store: ``pool``, or its own database's
    (``BINOME_EVENT_STORE_URLS``), opened for the command and closed after."""
    own: dict[str, asyncpg.Pool] = {}
    try:
        for context, url in settings.event_store_urls.items():
            own[context] = await create_pool(url, min_size=1, max_size=2)
        yield lambda context: own.get(context, pool)
    finally:
        for source_pool in own.values():
            await source_pool.close()
