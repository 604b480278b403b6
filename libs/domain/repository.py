"""The one repository and unit of work of every service: streams from and to
the event store, inside the caller's transaction.

``get(kind, stream_id)`` folds a stream with ``kind.rebuild(organisation,
events)``: an ``Aggregate`` (libs/domain/aggregate.py: enrollment, matching,
sessions) or an immutable state that returns new events instead of recording
them (evaluation's "decider" style: ``Template``, ``Assignment``); ``rebuild``
answers None when the stream is not of that kind.

``save(*changes)`` appends every ``Change`` (new events of one stream, decided
at the version the state was read at) in one statement: a concurrent change
makes the store raise ``ConcurrencyError`` (a 409). The service's own read
tables are updated in the same transaction (``read_tables.apply``).
``add(*aggregates)`` saves the aggregates' pending events. Appending the same
event ids again stores nothing and returns nothing (the store's idempotency:
a retried import, a redelivered trigger).

``cause``: the event this work reacts to (a process manager's trigger). It
becomes the events' ``causationid``, and the events not given ids get ids
derived from it and their stream position: doing the same work again for the
same cause writes nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, Self, TypeVar
from uuid import UUID

import asyncpg

from libs.domain.aggregate import Aggregate
from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent, new_envelope, registry
from libs.eventstore.store import EventStore, StreamAppend
from libs.runtime.clock import system_clock


class Folded(Protocol):
    """What ``Repository.get`` builds from a stream."""

    @classmethod
    def rebuild(cls, organisation: str, events: Sequence[DomainEvent]) -> Self | None: ...


class ReadTables(Protocol):
    """A service's own read tables, written with its events."""

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None: ...


F = TypeVar("F", bound=Folded)
V = TypeVar("V")


@dataclass(frozen=True)
class Change:
    """New events for one stream, decided at ``expected_version`` (0: a new stream)."""

    stream_id: UUID | str
    expected_version: int
    organisation: str
    country: str | None
    events: Sequence[DomainEvent]
    #: Fixed ids make a retried change idempotent (derived from its trigger).
    event_ids: Sequence[UUID] | None = None

    @classmethod
    def of(cls, aggregate: Aggregate, event_ids: Sequence[UUID] | None = None) -> Change:
        """The aggregate's pending events (taken from it)."""
        expected = aggregate.expected_version
        return cls(aggregate.stream_id, expected, aggregate.organisation, aggregate.country,
                   aggregate.take_pending(), event_ids)


def _rebuilt(kind: type[F], envelopes: Sequence[Envelope]) -> F | None:
    """The stream's events folded into ``kind``; None for no events."""
    if not envelopes:
        return None
    return kind.rebuild(envelopes[0].tenant, [registry.load(e) for e in envelopes])


class Repository:
    def __init__(
        self,
        conn: asyncpg.Connection,
        store: EventStore,
        read_tables: ReadTables,
        *,
        service: str,
        correlation_id: str | None = None,
        cause: UUID | None = None,
    ) -> None:
        """``service``: the envelopes' source, ``/binome/<service>``."""
        self.conn, self.store, self.read_tables, self.service = conn, store, read_tables, service
        self.correlation_id, self.cause = correlation_id, cause

    async def get(self, kind: type[F], stream_id: UUID | str) -> F | None:
        """The stream folded into ``kind``; None if there is no such stream of that kind."""
        return (await self.get_many((kind, stream_id)))[0]

    async def get_many(self, *wanted: tuple[type[F], UUID | str]) -> list[F | None]:
        """``get`` of each (kind, stream id), in one statement: a command that
        needs two aggregates loads them in one round trip."""
        streams = await self.store.read_streams([str(stream_id) for _, stream_id in wanted], conn=self.conn)
        return [_rebuilt(kind, streams.get(str(stream_id), [])) for kind, stream_id in wanted]

    async def version(self, stream_id: UUID | str) -> int:
        """The stream's version (0: no such stream), for a change that needs no state."""
        return await self.store.stream_version(str(stream_id), conn=self.conn)

    async def add(self, *aggregates: Aggregate) -> list[Envelope]:
        """Save the aggregates' pending events atomically."""
        return await self.save(*(Change.of(a) for a in aggregates if a.pending))

    async def save(self, *changes: Change) -> list[Envelope]:
        """Append atomically and update the read tables; return what this call
        stored (nothing when this exact change had been stored before)."""
        appends = [self._append(c) for c in changes if c.events]
        if not appends:
            return []
        results = await self.store.append_many(appends, conn=self.conn)
        if results[0].replayed:  # the same change again: stored already, read tables done
            return []
        stored = [envelope for result in results for envelope in result.events]
        await self.read_tables.apply(self.conn, stored)
        return stored

    def _append(self, change: Change) -> StreamAppend:
        stream_id = str(change.stream_id)
        ids = list(change.event_ids) if change.event_ids is not None else self._derived_ids(change)
        if len(ids) != len(change.events):
            raise ValueError(f"{len(change.events)} events but {len(ids)} event ids")
        envelopes = [
            new_envelope(
                event,
                service=self.service,
                subject=stream_id,
                tenant=change.organisation,
                country=change.country,
                correlationid=self.correlation_id,
                causationid=str(self.cause) if self.cause else None,
                event_id=event_id,
            )
            for event, event_id in zip(change.events, ids, strict=True)
        ]
        return StreamAppend(stream_id, change.expected_version, envelopes)

    def _derived_ids(self, change: Change) -> list[UUID | None]:
        if self.cause is None:
            return [None] * len(change.events)  # fresh ids
        return [uuid.uuid5(self.cause, f"{change.stream_id}/{change.expected_version + i}")
                for i in range(len(change.events))]


@dataclass
class UnitOfWork(Generic[V]):
    """One command, one transaction: the repository that loads and saves
    streams (and the read tables), what the command reads besides them (the
    service's views), and "now" (from the service's clock, read once).
    ``pool``, where a service gives it: reads from outside the transaction,
    for a command that must look around once its transaction has failed."""

    conn: asyncpg.Connection
    repo: Repository
    views: V
    now: datetime = field(default_factory=system_clock)
    pool: asyncpg.Pool | None = None
