"""Erasure that holds on disk: each service rewrites its tables' files once
it has applied an erasure, and the erasure reads ``completed`` only then.

Deleting a key or scrubbing a row is not enough under MVCC: the old tuple
stays in the table's file (a dead row, and its index entries) until the page
is reused, and a plain VACUUM compacts a page without zeroing the bytes it
frees. ``VACUUM FULL`` writes the live rows into a new file and unlinks the
old one, indexes and TOAST included; so after it, nothing erased is left in
the live relation files (the WAL and backups are the documented exception:
README, GDPR).

Each service runs one ``Compactor`` (a worker of ``binome up``):

1. it registers in the vault, so an erasure waits for it;
2. it takes the erasures it has not compacted yet, and keeps those its
   consumers of enrollment events have applied (their rows are scrubbed);
3. it waits until no open snapshot is older than that point, or
   ``VACUUM FULL`` would copy the dead rows as "recently dead";
4. it rewrites its schema's read tables (and, for the service that erases,
   the vault's key table), one statement each, under a lock timeout so that
   it never stalls the API behind its ACCESS EXCLUSIVE lock for long; then
   their planner statistics, which sample column values (``pg_statistic``);
5. it records the compaction in the vault.

Pending erasures are done in one pass, so a burst of erasures costs one
rewrite. The event log (``events``, ``outbox``) holds personal values only
sealed, and the audit trail and ``applied_events`` only ids: they are never
rewritten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from libs.eventstore.migrations import check_schema_name
from libs.gdpr.vault import KeyVault
from libs.retry import sleep_unless_stopped

if TYPE_CHECKING:
    from libs.messaging.consumer import Projection
    from libs.runtime.service import ServiceContext

log = logging.getLogger(__name__)

#: Tables of a service's schema that hold no personal value in clear.
NOT_REWRITTEN = ("events", "outbox", "applied_events", "audit_log", "schema_migrations")


class Compactor:
    def __init__(
        self,
        service: str,
        pool: asyncpg.Pool,
        vault: KeyVault,
        consumers: Mapping[str, Sequence[str]] | Sequence[str] = (),
        *,
        rewrites_vault: bool = False,
        interval_s: float = 2.0,
        lock_timeout_ms: int = 5000,
        horizon_timeout_s: float = 10.0,
    ) -> None:
        self.service = service
        self.schema = check_schema_name(service)
        self.pool, self.vault = pool, vault
        #: Consumers (``applied_events.consumer``) that apply an erasure
        #: event, with the contexts each reads (a bare list: enrollment's).
        self.consumers: dict[str, tuple[str, ...]] = (
            {name: tuple(contexts) for name, contexts in consumers.items()}
            if isinstance(consumers, Mapping)
            else {name: ("enrollment",) for name in consumers}
        )
        self.rewrites_vault = rewrites_vault
        self.interval_s = interval_s
        self.lock_timeout_ms = lock_timeout_ms
        self.horizon_timeout_s = horizon_timeout_s

    async def run(self, stop: asyncio.Event) -> None:
        await self.vault.register_compactor(self.service)
        while not stop.is_set():
            await self.compact_pending()
            await sleep_unless_stopped(stop, self.interval_s)

    async def compact_pending(self) -> list[UUID]:
        """Steps 2-5 once; the participants whose erasure this pass compacted."""
        pending = await self.vault.pending_compactions(self.service)
        ready = [pid for pid, event_id, context in pending if await self._applied(event_id, context)]
        if not ready:
            return []
        if not await self.rewrite(self.pool, await self._tables()):
            return []
        if self.rewrites_vault and not await self.rewrite(self.vault.pool, self.vault.key_tables):
            return []
        await self.vault.mark_compacted(self.service, ready)
        log.info("%s: erasure of %d participant(s) compacted on disk", self.service, len(ready))
        return ready

    async def _applied(self, event_id: UUID | None, context: str = "enrollment") -> bool:
        """Every consumer of the erasure's context applied it (scrubbed its rows)."""
        readers = [name for name, contexts in self.consumers.items() if context in contexts]
        if event_id is None or not readers:
            return True
        applied = await self.pool.fetchval(
            f"""SELECT count(*) FROM {self.schema}.applied_events
                WHERE event_id = $1 AND consumer = ANY($2::text[]) AND outcome = 'applied'""",
            event_id,
            readers,
        )
        return applied == len(readers)

    async def _tables(self) -> list[str]:
        rows = await self.pool.fetch(
            """SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relkind IN ('r', 'm') AND c.relname <> ALL($2::text[])
               ORDER BY c.relname""",
            self.schema,
            list(NOT_REWRITTEN),
        )
        return [r[0] for r in rows]

    async def rewrite(self, pool: asyncpg.Pool, tables: Sequence[str]) -> bool:
        """``VACUUM FULL`` each table once no snapshot can see its dead rows;
        False (try again next pass) if a snapshot or a lock held it up."""
        async with pool.acquire() as conn:
            if not await _horizon_passed(conn, self.horizon_timeout_s):
                log.info("%s: an old snapshot still sees erased rows; compaction retried", self.service)
                return False
            try:
                # VACUUM cannot run in a transaction, so no SET LOCAL: the
                # setting holds for the session, which ends here (finally).
                await conn.execute(f"SET lock_timeout = {int(self.lock_timeout_ms)}")
                for table in tables:
                    await conn.execute(f"VACUUM FULL {table}")
                    # Planner statistics sample column values: take them
                    # again from the scrubbed rows...
                    await conn.execute(f"ANALYZE {table}")
                # ...and drop the old samples' dead rows (superuser or
                # MAINTAIN privilege; else PostgreSQL skips it with a warning).
                await conn.execute("VACUUM FULL pg_catalog.pg_statistic")
            except asyncpg.LockNotAvailableError:
                log.info("%s: a table stayed locked; compaction retried on the next pass", self.service)
                return False
            finally:
                conn.terminate()  # never back to the pool with a session setting: the pool opens a new one
        return True


async def _horizon_passed(conn: asyncpg.Connection, timeout_s: float) -> bool:
    """Wait until every other backend's snapshot is newer than now: the rows
    deleted or scrubbed before this call are then dead for all, and
    ``VACUUM FULL`` drops them instead of copying them."""
    mark = await conn.fetchval("SELECT pg_current_xact_id()::text")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        older = await conn.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
                 -- VACUUM heeds only this database's snapshots for its tables
                 AND (datname = current_database() OR datname IS NULL)
                 AND age(backend_xmin) >= age(xid($1::text::xid8))""",
            mark,
        )
        if older == 0:
            return True
        await asyncio.sleep(0.1)
    return False


def compaction_workers(
    ctx: ServiceContext, projections: Sequence[Projection], *, rewrites_vault: bool = False
) -> list[tuple[str, Callable[[asyncio.Event], Awaitable[None]]]]:
    """The service's compactor as a ``binome up`` worker (none without a
    vault: such a service erases nothing). Its consumers of enrollment and
    of the directory are the ones that apply an erasure event."""
    if ctx.vault is None:
        return []
    # The consumers that apply an erasure event: of enrollment (ParticipantErased)
    # or of the directory (PersonErased).
    consumers = {p.name: tuple(p.contexts) for p in projections if {"enrollment", "directory"} & set(p.contexts)}
    compactor = Compactor(
        ctx.name,
        ctx.pool,
        ctx.vault,
        consumers,
        rewrites_vault=rewrites_vault,
        interval_s=ctx.settings.erasure_compaction_interval_s,
    )
    return [("erasure compaction", compactor.run)]
