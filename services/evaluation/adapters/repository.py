"""Streams in and out of evaluation's event store, inside the caller's
transaction: templates and assignments folded from their streams; new events
appended with the version they were decided on (a concurrent change is the
store's ``ConcurrencyError``: a 409) and applied to the read tables at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from libs.events.contexts.evaluation import AssignmentEvent, EvaluationEvent, SurveyTemplatePublished
from libs.events.envelope import Envelope
from libs.events.registry import new_envelope, registry
from libs.eventstore.store import EventStore, StreamAppend
from services.evaluation.adapters.projector import Projector
from services.evaluation.domain.assignments import Assignment
from services.evaluation.domain.templates import Template

SERVICE = "evaluation"  # the envelope's source: /binome/evaluation


@dataclass(frozen=True)
class Change:
    """New events for one stream, decided at ``expected_version``."""

    stream_id: UUID
    expected_version: int
    organisation: str
    country: str | None
    events: Sequence[EvaluationEvent]
    event_ids: Sequence[UUID] | None = None  # derived ids make a retried change idempotent


class Repository:
    def __init__(
        self,
        conn: asyncpg.Connection,
        store: EventStore,
        projector: Projector,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> None:
        self.conn, self.store, self.projector = conn, store, projector
        self.correlation_id, self.causation_id = correlation_id, causation_id

    async def _stream(self, stream_id: UUID) -> tuple[str, list]:
        envelopes = await self.store.read_stream(str(stream_id), conn=self.conn)
        return (envelopes[0].tenant if envelopes else ""), [registry.load(e) for e in envelopes]

    async def template(self, template_id: UUID) -> Template | None:
        organisation, events = await self._stream(template_id)
        if not events or not isinstance(events[0], SurveyTemplatePublished):
            return None
        return Template.from_events(organisation, events)

    async def assignment(self, assignment_id: UUID) -> Assignment | None:
        organisation, events = await self._stream(assignment_id)
        if not events or not isinstance(events[0], AssignmentEvent):
            return None
        return Assignment.from_events(organisation, events)

    def _envelopes(self, change: Change) -> StreamAppend:
        ids = list(change.event_ids) if change.event_ids is not None else [None] * len(change.events)
        return StreamAppend(
            str(change.stream_id),
            change.expected_version,
            [
                new_envelope(
                    event,
                    service=SERVICE,
                    subject=str(change.stream_id),
                    tenant=change.organisation,
                    country=change.country,
                    correlationid=self.correlation_id,
                    causationid=self.causation_id,
                    event_id=event_id,
                )
                for event, event_id in zip(change.events, ids, strict=True)
            ],
        )

    async def save(self, *changes: Change) -> list[Envelope]:
        """Append atomically and update the read tables; return what was stored
        (nothing when this exact change had been stored before)."""
        appends = [self._envelopes(c) for c in changes if c.events]
        if not appends:
            return []
        results = await self.store.append_many(appends, conn=self.conn)
        if results[0].replayed:
            return []
        stored = [envelope for result in results for envelope in result.events]
        await self.projector.apply(self.conn, stored)
        return stored
