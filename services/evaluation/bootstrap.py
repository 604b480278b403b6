"""Wires the evaluation service's parts over one store schema (the API and
the intake projection build theirs from it; tests build theirs over a test
schema, with a clock of their own)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.api.commands import IdempotentCommands
from libs.api.idempotency import IdempotencyKeys
from libs.domain.repository import Repository, UnitOfWork
from libs.eventstore.store import EventStore
from libs.runtime.clock import Clock, system_clock
from services.evaluation.adapters.erasure import FreeText
from services.evaluation.adapters.projector import Projector
from services.evaluation.adapters.references import References
from services.evaluation.consumers.intake import Intake
from services.evaluation.service_layer.views import Views

SERVICE = "evaluation"  # the envelopes' source: /binome/evaluation


class Evaluation(IdempotentCommands):
    def __init__(self, pool: asyncpg.Pool, store: EventStore, clock: Clock = system_clock) -> None:
        self.pool, self.store, self.clock = pool, store, clock
        self.projector = Projector(store.schema)
        self.views = Views(store.schema)
        self.references = References(store.schema)
        self.keys = IdempotencyKeys(store.schema)

    def intake(self) -> Intake:
        return Intake(self.store, self.repository, self.references, self.views)

    def repository(
        self, conn: asyncpg.Connection, correlation_id: str | None = None, cause: UUID | None = None
    ) -> Repository:
        return Repository(conn, self.store, self.projector, service=SERVICE, correlation_id=correlation_id, cause=cause)

    def unit_of_work(self, conn: asyncpg.Connection, correlation_id: str | None = None) -> UnitOfWork[Views]:
        return UnitOfWork(conn, self.repository(conn, correlation_id), self.views)

    async def rebuild_read_tables(self) -> int:
        """The own read tables from the log; free text dropped for GDPR is dropped again."""
        async with self.pool.acquire() as conn, conn.transaction():
            applied = await self.projector.rebuild(conn, self.store)
            await FreeText(self.store.schema).apply_again(conn)
            return applied
