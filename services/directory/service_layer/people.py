"""The directory's commands and reads, one organisation at a time.

Each command is one transaction: load the person, check the ``If-Match``
version, decide, append (the read table follows in the same transaction, so
the unique ``userName`` index refuses a taken name before anything commits).
Every read and write names the caller's organisation: another
organisation's person is "not found", never "forbidden".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson

from libs.auth.principal import Principal
from libs.domain.repository import Repository
from libs.events.contexts.enrollment import Actor
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import ConcurrencyError, EventStore
from libs.gdpr.vault import KeyVault
from services.directory.adapters.projector import Projector
from services.directory.domain.errors import InvalidInput, Issue, NotFound
from services.directory.domain.person import Gone, Person, PersonRecord

SERVICE = "directory"  # the envelopes' source: /binome/directory
#: How far up a manager chain the cycle check looks (deeper chains are refused too).
MAX_CHAIN = 64
#: Attempts of an unconditional write that lost a race with another writer.
ATTEMPTS = 3


class StaleVersion(Exception):
    """``If-Match`` named a version the person has moved past (412)."""


def actor_of(principal: Principal) -> Actor:
    return Actor(subject=principal.subject, client_id=principal.client_id)


class People:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, vault: KeyVault | None) -> None:
        self.pool, self.store, self.vault = pool, store, vault
        self.projector = Projector(store.schema)
        s = self.schema = check_schema_name(store.schema)
        self._sql_row = f"SELECT * FROM {s}.people WHERE organisation = $1 AND person_id = $2 AND NOT deleted"
        self._sql_chain = f"""
            WITH RECURSIVE chain(person_id, depth) AS (
                SELECT $2::text, 1
                UNION ALL
                SELECT p.manager_id, c.depth + 1 FROM chain c
                JOIN {s}.people p ON p.person_id::text = c.person_id AND p.organisation = $1 AND NOT p.deleted
                WHERE p.manager_id IS NOT NULL AND c.depth < {MAX_CHAIN + 1}
            )
            SELECT person_id FROM chain"""

    # ------------------------------------------------------------------ reads

    async def row(self, conn: asyncpg.Connection | asyncpg.Pool, organisation: str, person_id: str) -> dict[str, Any]:
        """The person's read-table row; ``NotFound`` if not the organisation's."""
        try:
            key = UUID(person_id)
        except ValueError:
            raise NotFound("User", person_id) from None
        record = await conn.fetchrow(self._sql_row, organisation, key)
        if record is None:
            raise NotFound("User", person_id)
        return decoded(record)

    # ------------------------------------------------------------------ writes

    async def provision(self, principal: Principal, record: PersonRecord, correlation_id: str | None) -> dict[str, Any]:
        person_id = uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await self._check_manager(conn, principal.organisation, person_id, record)
            person = Person.provision(principal.organisation, person_id, record, actor_of(principal))
            await self._repo(conn, correlation_id).add(person)
            return await self.row(conn, principal.organisation, str(person_id))

    async def change(
        self,
        principal: Principal,
        person_id: str,
        wanted: Callable[[dict[str, Any]], Awaitable[PersonRecord] | PersonRecord],
        if_match: int | None,
        correlation_id: str | None,
    ) -> dict[str, Any]:
        """Replace (PUT) or patch (PATCH) a person: ``wanted`` turns the
        current row into the new record. Unconditional writes that lose a
        race are retried on the new state; conditional ones answer 412."""
        for attempt in range(ATTEMPTS):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    row, person = await self._load(conn, principal.organisation, person_id, if_match)
                    record = wanted(row)
                    if not isinstance(record, PersonRecord):
                        record = await record
                    await self._check_manager(conn, principal.organisation, person.id, record)
                    person.change(record, actor_of(principal))
                    await self._repo(conn, correlation_id).add(person)
                    return await self.row(conn, principal.organisation, person_id)
            except ConcurrencyError:
                if if_match is not None or attempt == ATTEMPTS - 1:
                    raise StaleVersion("The user changed meanwhile; read it again.") from None
        raise AssertionError("unreachable")

    async def delete(self, principal: Principal, person_id: str, if_match: int | None,
                     correlation_id: str | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            _, person = await self._load(conn, principal.organisation, person_id, if_match)
            person.delete(actor_of(principal))
            await self._repo(conn, correlation_id).add(person)

    async def erase(self, principal: Principal, person_id: UUID, correlation_id: str | None) -> None:
        """GDPR erasure: ``PersonErased`` (after a deletion if still there),
        then the person's key is shredded. Safe to retry."""
        if self.vault is None:
            raise RuntimeError("this service runs without a key vault: erasure cannot shred keys")
        async with self.pool.acquire() as conn, conn.transaction():
            person = await self._repo(conn, correlation_id).get(Person, person_id)
            if person is None or person.organisation != principal.organisation:
                raise NotFound("person", person_id)
            if not person.erased:
                person.erase(actor_of(principal))
                await self._repo(conn, correlation_id).add(person)
        erased = [e.id for e in await self.store.read_stream(str(person_id)) if e.type.endswith(".PersonErased.v1")]
        await self.vault.erase(person_id, erased[-1] if erased else None, context="directory")

    # ------------------------------------------------------------------ helpers

    def _repo(self, conn: asyncpg.Connection, correlation_id: str | None) -> Repository:
        return Repository(conn, self.store, self.projector, service=SERVICE, correlation_id=correlation_id)

    async def _load(
        self, conn: asyncpg.Connection, organisation: str, person_id: str, if_match: int | None
    ) -> tuple[dict[str, Any], Person]:
        row = await self.row(conn, organisation, person_id)
        person = await self._repo(conn, None).get(Person, row["person_id"])
        if person is None or person.organisation != organisation:
            raise NotFound("User", person_id)
        if if_match is not None and if_match != person.version:
            raise StaleVersion(f"The user is at version {person.version}, not {if_match}.")
        if person.deleted or person.erased:
            raise Gone(f"User {person_id} is no longer in the directory.")
        return row, person

    async def _check_manager(
        self, conn: asyncpg.Connection, organisation: str, person_id: UUID, record: PersonRecord
    ) -> None:
        """A person is not their own manager, nor above themself in the chain.
        The manager may not be provisioned yet (HR feeds send people in any
        order): an unknown id is kept, and the chain is followed once it is."""
        manager = record.manager_id
        if manager is None:
            return
        chain = [r["person_id"] for r in await conn.fetch(self._sql_chain, organisation, manager)]
        if str(person_id) in chain:
            issue = "manager.value: this manager would make the reporting line a loop."
            raise InvalidInput([Issue("manager", issue)])
        if len(chain) > MAX_CHAIN:
            raise InvalidInput([Issue("manager", f"manager.value: a reporting line deeper than {MAX_CHAIN}.")])


def decoded(record: asyncpg.Record) -> dict[str, Any]:
    row = dict(record)
    if isinstance(row.get("state"), str):
        row["state"] = orjson.loads(row["state"])
    return row
