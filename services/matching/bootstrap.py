"""Wires the matching service's parts over one store schema (the API builds
one ``Matching`` per app; the candidate-pool consumer uses the same)."""

from __future__ import annotations

import asyncpg

from libs.api.commands import IdempotentCommands
from libs.api.held_reads import NOTHING_HELD, HeldReads, NothingHeld
from libs.api.idempotency import IdempotencyKeys
from libs.domain.repository import Repository, UnitOfWork
from libs.events.contexts.enrollment import ParticipantEvent, WaveEnded
from libs.events.envelope import Envelope
from libs.eventstore.store import EventStore
from services.matching.adapters.read_tables import ReadTables
from services.matching.consumers.candidate_pool import CandidatePool
from services.matching.service_layer import lifecycle
from services.matching.service_layer.pool import PoolQueries
from services.matching.service_layer.views import Views

SERVICE = "matching"  # the envelopes' source: /binome/matching


class Matching(IdempotentCommands):
    """The service's parts, built once per app (or consumer) over its store's schema."""

    def __init__(
        self, pool: asyncpg.Pool, store: EventStore, held_reads: HeldReads | NothingHeld = NOTHING_HELD
    ) -> None:
        self.pool, self.store = pool, store
        #: Pairs read by id, answered again while nothing changed (libs/api/held_reads.py).
        self.held_reads = held_reads
        self.read_tables = ReadTables(store.schema)
        self.queries = PoolQueries(store.schema)
        self.views = Views(store.schema)
        self.keys = IdempotencyKeys(store.schema)

    def unit_of_work(
        self, conn: asyncpg.Connection, correlation_id: str | None = None, cause: Envelope | None = None
    ) -> UnitOfWork[PoolQueries]:
        repo = Repository(
            conn,
            self.store,
            self.read_tables,
            service=SERVICE,
            correlation_id=correlation_id or (cause.correlationid if cause else None),
            cause=cause.id if cause else None,
        )
        return UnitOfWork(conn, repo, self.queries)

    def candidate_pool(self) -> CandidatePool:
        """The projection of enrollment events; a withdrawal or an erasure ends
        the person's open pairs, the end of a wave its pairs, in the
        projection's own transaction."""

        async def on_withdrawal(conn: asyncpg.Connection, envelope: Envelope, event: ParticipantEvent) -> None:
            await lifecycle.after_withdrawal(self.unit_of_work(conn, cause=envelope), event)

        async def on_wave_ended(conn: asyncpg.Connection, envelope: Envelope, event: WaveEnded) -> None:
            await lifecycle.after_wave_ended(self.unit_of_work(conn, cause=envelope), event)

        return CandidatePool(self.store.schema, on_withdrawal, on_wave_ended)

    async def rebuild_read_tables(self) -> int:
        """Empty pairs, runs and exclusions and apply the whole log again (one transaction)."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self.read_tables.rebuild(conn, self.store)
