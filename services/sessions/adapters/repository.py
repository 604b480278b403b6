"""Aggregates from and to the event store, inside the caller's transaction.

``get`` folds a stream into its aggregate; ``add`` appends the aggregates'
pending events atomically, each stream at the version it was loaded at (a
concurrent change makes the store raise ``ConcurrencyError``: a 409), and
applies them to the read tables in the same transaction.
"""

from __future__ import annotations

from typing import TypeVar

import asyncpg

from libs.events.envelope import Envelope
from libs.events.registry import new_envelope, registry
from libs.eventstore.store import EventStore, StreamAppend
from services.sessions.adapters.projector import Projector
from libs.domain.aggregate import Aggregate

SERVICE = "sessions"  # the envelope's source: /binome/sessions

A = TypeVar("A", bound=Aggregate)


class Repository:
    def __init__(
        self, conn: asyncpg.Connection, store: EventStore, projector: Projector, correlation_id: str | None = None
    ) -> None:
        self.conn, self.store, self.projector, self.correlation_id = conn, store, projector, correlation_id

    async def get(self, kind: type[A], stream_id: str) -> A | None:
        """The aggregate, or None if no stream of that kind has this id."""
        envelopes = await self.store.read_stream(stream_id, conn=self.conn)
        if not envelopes:
            return None
        return kind.rebuild(envelopes[0].tenant, [registry.load(e) for e in envelopes])

    async def add(self, *aggregates: Aggregate) -> list[Envelope]:
        """Append every aggregate's new events in one transaction; return them."""
        appends = [self._append_of(a) for a in aggregates if a.pending]
        if not appends:
            return []
        results = await self.store.append_many(appends, conn=self.conn)
        stored = [envelope for result in results for envelope in result.events]
        await self.projector.apply(self.conn, stored)
        return stored

    def _append_of(self, aggregate: Aggregate) -> StreamAppend:
        expected = aggregate.expected_version
        envelopes = [
            new_envelope(
                event,
                service=SERVICE,
                subject=aggregate.stream_id,
                tenant=aggregate.organisation,
                country=aggregate.country,
                correlationid=self.correlation_id,
            )
            for event in aggregate.take_pending()
        ]
        return StreamAppend(aggregate.stream_id, expected, envelopes)
