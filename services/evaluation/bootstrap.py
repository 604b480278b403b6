"""Wires the evaluation service's parts over one store schema (the API and
the intake projection build theirs from it; tests build theirs over a test
schema, with a clock of their own)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from libs.api.commands import IdempotentCommands
from libs.api.idempotency import IdempotencyKeys
from libs.eventstore.store import EventStore
from services.evaluation.adapters.erasure import FreeText
from services.evaluation.adapters.projector import Projector
from services.evaluation.adapters.references import References
from services.evaluation.adapters.repository import Repository
from services.evaluation.service_layer.handlers import UnitOfWork
from services.evaluation.consumers.intake import Intake
from services.evaluation.service_layer.views import Views

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Evaluation(IdempotentCommands):
    def __init__(self, pool: asyncpg.Pool, store: EventStore, clock: Clock = system_clock) -> None:
        self.pool, self.store, self.clock = pool, store, clock
        self.projector = Projector(store.schema)
        self.views = Views(store.schema)
        self.references = References(store.schema)
        self.keys = IdempotencyKeys(store.schema)

    def intake(self) -> Intake:
        return Intake(self.store, self.projector, self.references, self.views)

    def unit_of_work(self, conn: asyncpg.Connection, correlation_id: str | None = None) -> UnitOfWork:
        return UnitOfWork(conn, Repository(conn, self.store, self.projector, correlation_id=correlation_id), self.views)

    async def rebuild_read_tables(self) -> int:
        """The own read tables from the log; free text dropped for GDPR is dropped again."""
        async with self.pool.acquire() as conn, conn.transaction():
            applied = await self.projector.rebuild(conn, self.store)
            await FreeText(self.store.schema).apply_again(conn)
            return applied
