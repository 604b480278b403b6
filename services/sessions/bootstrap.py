"""Wires the sessions service's parts over one store schema (the API builds
one ``Sessions`` per app; tests build theirs over a test schema with a clock
they move)."""

from __future__ import annotations

import asyncpg

from libs.api.commands import IdempotentCommands
from libs.api.idempotency import IdempotencyKeys
from libs.domain.repository import Repository, UnitOfWork
from libs.eventstore.store import EventStore
from libs.runtime.clock import Clock, system_clock
from services.sessions.adapters.erasure import FreeText
from services.sessions.adapters.projector import Projector
from services.sessions.service_layer.views import Views

SERVICE = "sessions"  # the envelopes' source: /binome/sessions


class Sessions(IdempotentCommands):
    """The service's parts, built once per app over its store's schema."""

    def __init__(self, pool: asyncpg.Pool, store: EventStore, clock: Clock = system_clock) -> None:
        self.pool, self.store, self.clock = pool, store, clock
        self.projector = Projector(store.schema)
        self.views = Views(store.schema)
        self.keys = IdempotencyKeys(store.schema)

    def unit_of_work(self, conn: asyncpg.Connection, correlation_id: str | None = None) -> UnitOfWork[Views]:
        repo = Repository(conn, self.store, self.projector, service=SERVICE, correlation_id=correlation_id)
        return UnitOfWork(conn, repo, self.views, self.clock())

    async def rebuild_read_tables(self) -> int:
        """Empty the own read tables and apply the whole log again (one
        transaction); free text dropped for GDPR is dropped again."""
        async with self.pool.acquire() as conn, conn.transaction():
            applied = await self.projector.rebuild(conn, self.store)
            await FreeText(self.store.schema).apply_again(conn)
            return applied
