"""People from and to the event store, inside the caller's transaction.

``get`` folds a person's stream; ``add`` appends their pending events with the
version they were loaded at (a concurrent change makes the store raise
``ConcurrencyError``) and applies them to the read table in the same
transaction, where the unique index on ``userName`` has the last word.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.events.envelope import Envelope
from libs.events.registry import new_envelope, registry
from libs.eventstore.store import EventStore, StreamAppend
from services.directory.adapters.projector import UNIQUE_USER_NAME, Projector
from services.directory.domain.errors import UserNameTaken
from services.directory.domain.person import Person

SERVICE = "directory"  # the envelope's source: /binome/directory


class Repository:
    def __init__(
        self, conn: asyncpg.Connection, store: EventStore, projector: Projector, *, correlation_id: str | None = None
    ) -> None:
        self.conn, self.store, self.projector, self.correlation_id = conn, store, projector, correlation_id

    async def get(self, person_id: UUID) -> Person | None:
        """The person, or None if no person has this id."""
        envelopes = await self.store.read_stream(str(person_id), conn=self.conn)
        if not envelopes:
            return None
        return Person.rebuild(envelopes[0].tenant, [registry.load(e) for e in envelopes])

    async def add(self, person: Person) -> list[Envelope]:
        """Append the person's new events atomically; return them."""
        if not person.pending:
            return []
        expected, events = person.expected_version, person.take_pending()
        envelopes = [
            new_envelope(event, service=SERVICE, subject=str(person.id), tenant=person.organisation,
                         country=person.country, correlationid=self.correlation_id)
            for event in events
        ]
        [result] = await self.store.append_many([StreamAppend(str(person.id), expected, envelopes)], conn=self.conn)
        try:
            async with self.conn.transaction():  # a savepoint: the caller may still look around
                await self.projector.apply(self.conn, result.events)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == UNIQUE_USER_NAME:
                raise UserNameTaken() from exc
            raise
        return result.events
