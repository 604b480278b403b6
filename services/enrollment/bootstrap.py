"""Wires the enrollment service's parts over one store schema (the API builds
one ``Enrollment`` per app; tests build theirs over a test schema)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from libs.api.commands import IdempotentCommands
from libs.api.held_reads import NOTHING_HELD, HeldReads, NothingHeld
from libs.api.idempotency import IdempotencyKeys
from libs.auth.principal import Principal
from libs.domain.repository import Repository, UnitOfWork
from libs.events.contexts.enrollment import ParticipantErased
from libs.events.envelope import Envelope
from libs.eventstore.store import EventStore
from libs.gdpr.vault import KeyVault
from services.enrollment.adapters.projector import Projector
from services.enrollment.consumers.directory import DirectoryFeed
from services.enrollment.domain.errors import NotFound
from services.enrollment.service_layer.views import Views

SERVICE = "enrollment"  # the envelopes' source: /binome/enrollment
ERASED = ParticipantErased.event_type()


class Enrollment(IdempotentCommands):
    """The service's parts, built once per app over its store's schema."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        vault: KeyVault | None,
        held_reads: HeldReads | NothingHeld = NOTHING_HELD,
    ) -> None:
        self.pool, self.store, self.vault = pool, store, vault
        #: Pages of participants answered again while nothing changed (libs/api/held_reads.py).
        self.held_reads = held_reads
        self.projector = Projector(store.schema)
        self.views = Views(store.schema, vault)
        self.keys = IdempotencyKeys(store.schema)
        self.directory = self.views.directory

    def unit_of_work(
        self, conn: asyncpg.Connection, correlation_id: str | None = None, cause: Envelope | None = None
    ) -> UnitOfWork[Views]:
        """``cause``: the event a consumer's work reacts to (a directory change)."""
        repo = Repository(
            conn,
            self.store,
            self.projector,
            service=SERVICE,
            correlation_id=correlation_id or (cause.correlationid if cause else None),
            cause=cause.id if cause else None,
        )
        return UnitOfWork(conn, repo, self.views, pool=self.pool)

    def directory_feed(self) -> DirectoryFeed:
        """The consumer of the HR directory; its effects on participants are
        recorded in its own transaction, caused by the directory event."""
        return DirectoryFeed(self.directory, lambda conn, envelope: self.unit_of_work(conn, cause=envelope))

    async def forget(self, participant_id: UUID) -> None:
        """After ``ParticipantErased`` committed: drop stored responses that
        could still show the person's data, then shred their keys. Shredding
        comes last: it makes the erasure pending for the compactors, whose
        rewrite must find every row of it already deleted."""
        if self.vault is None:
            raise RuntimeError("this service runs without a key vault: erasure cannot shred keys")
        await self.keys.forget(self.pool, str(participant_id))
        erased = [e.id for e in await self.store.read_stream(str(participant_id)) if e.type == ERASED]
        await self.vault.erase(participant_id, erased[-1] if erased else None)

    async def export(self, principal: Principal, participant_id: UUID) -> dict[str, Any] | None:
        """GDPR access: the participant as the API shows them, and every fact
        of their stream (None if unknown or not the caller's to see)."""
        try:
            doc = await self.views.participant(self.pool, principal, participant_id)
        except NotFound:
            return None
        history = await self.store.read_stream(str(participant_id))
        return {
            "participant": doc,
            "history": [{"type": e.type, "time": e.time.isoformat(), "data": e.data} for e in history],
        }

    async def rebuild_read_tables(self) -> int:
        """Empty the read tables and apply the whole log again (one transaction)."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self.projector.rebuild(conn, self.store)
