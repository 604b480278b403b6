"""Aggregates from and to the event store, inside the caller's transaction.

``get`` folds a stream into its aggregate; ``add`` appends every aggregate's
pending events with the version it was loaded at (a concurrent change makes
the store raise ``ConcurrencyError``: a 409) and applies them to the read
tables in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TypeVar
from uuid import UUID

import asyncpg

from libs.events.envelope import Envelope
from libs.events.registry import new_envelope, registry
from libs.eventstore.store import EventStore, StreamAppend
from services.enrollment.adapters.projector import ONE_ENROLMENT_PER_PERSON, Projector
from libs.domain.aggregate import Aggregate
from services.enrollment.domain.errors import DuplicateEnrolment

SERVICE = "enrollment"  # the envelope's source: /binome/enrollment

A = TypeVar("A", bound=Aggregate)


class Repository:
    def __init__(
        self,
        conn: asyncpg.Connection,
        store: EventStore,
        projector: Projector,
        *,
        correlation_id: str | None = None,
        cause: UUID | None = None,
    ) -> None:
        """``cause``: the event this work reacts to (a directory change). It
        becomes the events' ``causationid`` and fixes their ids, so the same
        work again for the same cause writes nothing more."""
        self.conn, self.store, self.projector, self.correlation_id = conn, store, projector, correlation_id
        self.cause = cause

    async def get(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate, or None if no stream of that kind has this id."""
        envelopes = await self.store.read_stream(str(aggregate_id), conn=self.conn)
        if not envelopes:
            return None
        return kind.rebuild(envelopes[0].tenant, [registry.load(e) for e in envelopes])

    def envelopes(self, aggregate: Aggregate, event_ids: Sequence[UUID] | None = None) -> StreamAppend:
        expected = aggregate.expected_version
        events = aggregate.take_pending()
        if event_ids is not None:
            ids: list[UUID | None] = list(event_ids)
        elif self.cause is not None:
            ids = [uuid.uuid5(self.cause, f"{aggregate.id}/{expected + i}") for i in range(len(events))]
        else:
            ids = [None] * len(events)
        if len(ids) != len(events):
            raise ValueError(f"{len(events)} events but {len(ids)} event ids")
        return StreamAppend(
            str(aggregate.id),
            expected,
            [
                new_envelope(
                    event,
                    service=SERVICE,
                    subject=str(aggregate.id),
                    tenant=aggregate.organisation,
                    country=aggregate.country,
                    correlationid=self.correlation_id,
                    causationid=str(self.cause) if self.cause else None,
                    event_id=event_id,
                )
                for event, event_id in zip(events, ids, strict=True)
            ],
        )

    async def add(
        self, *aggregates: Aggregate, event_ids: Mapping[UUID, Sequence[UUID]] | None = None
    ) -> list[Envelope]:
        """Append the aggregates' new events atomically; return the events
        this call stored (none when the append had been made already).

        ``event_ids`` fixes the ids of an aggregate's events (bulk import):
        appending the same ids again writes nothing (the store's idempotency).
        """
        appends = [self.envelopes(a, (event_ids or {}).get(a.id)) for a in aggregates if a.pending]
        if not appends:
            return []
        results = await self.store.append_many(appends, conn=self.conn)
        stored = [envelope for result in results for envelope in result.events]
        if results[0].replayed:  # a retry of an append already made: nothing new, read tables done
            return []
        try:
            async with self.conn.transaction():  # a savepoint: the caller may still look around
                await self.projector.apply(self.conn, stored)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == ONE_ENROLMENT_PER_PERSON:
                raise DuplicateEnrolment() from exc
            raise
        return stored
