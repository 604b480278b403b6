"""Pairs from and to the event store, inside the caller's transaction.

``pair`` folds a pair's stream; ``save`` appends every new event (pairs with
the version they were loaded at, new streams with version 0) atomically and
applies them to the read tables in the same transaction. A concurrent change
to the same pair makes the store raise ``ConcurrencyError`` (a 409).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from libs.events.contexts.matching import MatchingEvent, PairEvent
from libs.events.envelope import Envelope
from libs.events.registry import new_envelope, registry
from libs.eventstore.store import EventStore, StreamAppend
from services.matching.adapters.read_tables import ReadTables
from services.matching.domain.pair import Pair

SERVICE = "matching"  # the envelope's source: /binome/matching


@dataclass(frozen=True)
class NewStream:
    """Events of a stream that is no pair (a run, an exclusion, an interest):
    ``version`` is the stream's version they follow (0: it must not exist yet)."""

    stream_id: UUID
    organisation: str
    country: str | None
    events: Sequence[MatchingEvent]
    version: int = 0


class Repository:
    def __init__(
        self,
        conn: asyncpg.Connection,
        store: EventStore,
        read_tables: ReadTables,
        *,
        correlation_id: str | None = None,
        cause: UUID | None = None,
    ) -> None:
        """``cause``: the event this work reacts to (a withdrawal). It becomes
        the events' ``causationid`` and seeds their ids, so that doing the
        same work again for the same cause writes nothing more."""
        self.conn, self.store, self.read_tables = conn, store, read_tables
        self.correlation_id, self.cause = correlation_id, cause

    async def pair(self, pair_id: UUID) -> Pair | None:
        envelopes = await self.store.read_stream(str(pair_id), conn=self.conn)
        events = [registry.load(e) for e in envelopes]
        if not events or not all(isinstance(e, PairEvent) for e in events):
            return None
        return Pair.rebuild(envelopes[0].tenant, events)  # type: ignore[arg-type]

    async def stream(self, stream_id: UUID) -> tuple[str | None, list[MatchingEvent]]:
        """The organisation and events of a stream that is no pair (None, []: none yet)."""
        envelopes = await self.store.read_stream(str(stream_id), conn=self.conn)
        events = [registry.load(e) for e in envelopes]
        return (envelopes[0].tenant if envelopes else None), events  # type: ignore[return-value]

    async def save(self, pairs: Sequence[Pair] = (), new: Sequence[NewStream] = ()) -> list[Envelope]:
        appends = [
            self._append(str(s.stream_id), s.version, s.organisation, s.country, list(s.events)) for s in new
        ] + [
            self._append(str(p.id), p.expected_version, p.organisation, p.country, p.take_pending())
            for p in pairs
            if p.pending
        ]
        if not appends:
            return []
        results = await self.store.append_many(appends, conn=self.conn)
        if results[0].replayed:  # the same work for the same cause: stored already
            return []
        stored = [envelope for result in results for envelope in result.events]
        await self.read_tables.apply(self.conn, stored)
        return stored

    def _append(
        self, stream_id: str, expected: int, organisation: str, country: str | None, events: list[MatchingEvent]
    ) -> StreamAppend:
        envelopes = [
            new_envelope(
                event,
                service=SERVICE,
                subject=stream_id,
                tenant=organisation,
                country=country,
                correlationid=self.correlation_id,
                causationid=str(self.cause) if self.cause else None,
                event_id=uuid.uuid5(self.cause, f"{stream_id}/{expected + i}") if self.cause else None,
            )
            for i, event in enumerate(events)
        ]
        return StreamAppend(stream_id, expected, envelopes)
