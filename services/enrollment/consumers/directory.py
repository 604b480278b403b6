"""The HR directory as enrollment needs it, and what its changes do to the
programme (service_layer/directory.py).

A consumer of ``binome.directory.events``: every event updates
``directory_people`` (adapters/directory.py); a change of a person, or their
leaving, also records events on their participants, in the same transaction
(the runtime records the directory event as applied in it too). Those
effects are taken once per directory event (``directory_effects``, which a
rebuild keeps): a replay rebuilds the table and records nothing again.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from libs.events.contexts.directory import (
    PersonDeactivated,
    PersonDeleted,
    PersonErased,
    PersonProvisioned,
    PersonReactivated,
    PersonUpdated,
)
from libs.domain.repository import UnitOfWork
from libs.events.envelope import Envelope
from libs.messaging.dispatch import Consumer
from services.enrollment.adapters.directory import DirectoryPeople, DirectoryPerson
from services.enrollment.service_layer import directory
from services.enrollment.service_layer.views import Views


class DirectoryFeed(Consumer):
    name = "enrollment-directory"
    contexts = ("directory",)

    def __init__(self, people: DirectoryPeople, unit_of_work: Callable[[asyncpg.Connection, Envelope], UnitOfWork[Views]]):
        self.people = people
        self.unit_of_work = unit_of_work  # a unit of work whose events name the directory event as their cause
        self._sql_take = (
            f"INSERT INTO {people.schema}.directory_effects (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1"
        )

    async def _first_time(self, conn: asyncpg.Connection, envelope: Envelope) -> bool:
        """True once per directory event: its effects are taken now."""
        return await conn.fetchval(self._sql_take, envelope.id) is not None

    async def on_PersonProvisioned(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonProvisioned) -> None:
        await self.people.save(conn, DirectoryPerson.of(envelope.tenant, event), envelope.sequence)

    async def on_PersonUpdated(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonUpdated) -> None:
        await self.people.save(conn, DirectoryPerson.of(envelope.tenant, event), envelope.sequence)
        if await self._first_time(conn, envelope):
            await directory.person_changed(self.unit_of_work(conn, envelope), event.person_id, event)

    async def on_PersonDeactivated(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonDeactivated) -> None:
        await self.people.set(conn, event.person_id, envelope.sequence, active=False)
        if await self._first_time(conn, envelope):
            await directory.person_left(self.unit_of_work(conn, envelope), event.person_id, event.actor)

    async def on_PersonReactivated(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonReactivated) -> None:
        """Back in the organisation: nothing ended comes back by itself (they may be enrolled again)."""
        await self.people.set(conn, event.person_id, envelope.sequence, active=True)

    async def on_PersonDeleted(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonDeleted) -> None:
        await self.people.set(conn, event.person_id, envelope.sequence, active=False, deleted=True)

    async def on_PersonErased(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonErased) -> None:
        await self.people.forget(conn, event.person_id)

    async def reset(self, conn: asyncpg.Connection) -> None:
        await self.people.reset(conn)
