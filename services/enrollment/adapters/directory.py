"""Enrollment's copy of the organisation's HR directory (table
``directory_people``, migrations/0003_directory.sql), written by the
directory consumer (consumers/directory.py) and read by enrolments that name a
provisioned person by employee reference.

A person is linked to the participants whose ``employee_ref`` is their
``employee_number`` (SCIM's enterprise ``employeeNumber``) in the same
organisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.events.contexts.directory import DirectoryProfile, PersonIdentity, PersonState
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.personal import known


def display_name_of(identity: PersonIdentity) -> str | None:
    """What SCIM calls the person, most specific first."""
    composed = " ".join(n for n in (identity.given_name, identity.family_name) if n)
    for name in (identity.display_name, identity.formatted_name, composed, identity.user_name):
        if known(name):
            return name
    return None


def email_of(identity: PersonIdentity) -> str | None:
    """The primary e-mail, else the work one, else the first."""
    ranked = sorted(identity.emails, key=lambda e: (not e.primary, e.type != "work"))
    return next((e.value for e in ranked if known(e.value)), None)


@dataclass(frozen=True)
class DirectoryPerson:
    """One provisioned person, as enrollment keeps them."""

    person_id: UUID
    organisation: str
    employee_number: str | None
    display_name: str | None
    email: str | None
    manager_id: UUID | None
    profile: DirectoryProfile
    active: bool
    deleted: bool = False
    #: The manager's employee number (filled by ``DirectoryPeople.person``).
    manager_number: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, organisation: str, event: PersonState) -> DirectoryPerson:
        manager = known(event.manager_id)
        return cls(
            person_id=event.person_id,
            organisation=organisation,
            employee_number=known(event.identity.employee_number),
            display_name=display_name_of(event.identity),
            email=email_of(event.identity),
            manager_id=UUID(manager) if manager else None,
            profile=event.profile,
            active=event.is_active,  # None: not stated, which counts as active
        )


class DirectoryPeople:
    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        self._sql_upsert = f"""
            INSERT INTO {s}.directory_people (person_id, organisation, employee_number, display_name, email,
                                              manager_id, profile, active, version)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
            ON CONFLICT (person_id) DO UPDATE SET
                employee_number = EXCLUDED.employee_number, display_name = EXCLUDED.display_name,
                email = EXCLUDED.email, manager_id = EXCLUDED.manager_id, profile = EXCLUDED.profile,
                active = EXCLUDED.active, version = EXCLUDED.version"""
        self._sql_by_number = f"""
            SELECT p.*, m.employee_number AS manager_number FROM {s}.directory_people p
            LEFT JOIN {s}.directory_people m ON m.person_id = p.manager_id
            WHERE p.organisation = $1 AND p.employee_number = $2 AND NOT p.deleted
            ORDER BY p.active DESC, p.person_id"""
        self._sql_by_id = f"""
            SELECT p.*, m.employee_number AS manager_number FROM {s}.directory_people p
            LEFT JOIN {s}.directory_people m ON m.person_id = p.manager_id
            WHERE p.person_id = $1"""

    async def save(self, conn: asyncpg.Connection, person: DirectoryPerson, version: int) -> None:
        await conn.execute(
            self._sql_upsert,
            person.person_id,
            person.organisation,
            person.employee_number,
            person.display_name,
            person.email,
            person.manager_id,
            person.profile.model_dump_json(),
            person.active,
            version,
        )

    async def set(self, conn: asyncpg.Connection, person_id: UUID, version: int, **columns: bool) -> None:
        """Set ``active`` and/or ``deleted``."""
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=3))
        await conn.execute(
            f"UPDATE {self.schema}.directory_people SET version = $2, {assignments} WHERE person_id = $1",
            person_id,
            version,
            *columns.values(),
        )

    async def forget(self, conn: asyncpg.Connection, person_id: UUID) -> None:
        """GDPR erasure: the person is gone from enrollment's directory."""
        await conn.execute(f"DELETE FROM {self.schema}.directory_people WHERE person_id = $1", person_id)

    async def person(self, conn: asyncpg.Connection, person_id: UUID) -> DirectoryPerson | None:
        row = await conn.fetchrow(self._sql_by_id, person_id)
        return _person(row) if row else None

    async def by_employee_number(
        self, conn: asyncpg.Connection, organisation: str, employee_number: str
    ) -> DirectoryPerson | None:
        """The person with this employee reference (an active one first, if
        the HR system reused a number), or None."""
        row = await conn.fetchrow(self._sql_by_number, organisation, employee_number)
        return _person(row) if row else None

    async def linked_participants(
        self, conn: asyncpg.Connection, organisation: str, employee_number: str
    ) -> list[UUID]:
        """Participants of this person still in a wave that has not ended."""
        rows = await conn.fetch(
            f"""SELECT p.participant_id FROM {self.schema}.participants p
                JOIN {self.schema}.waves w USING (wave_id)
                WHERE p.organisation = $1 AND p.employee_ref = $2 AND p.status = 'enrolled' AND w.status <> 'ended'
                ORDER BY p.participant_id""",
            organisation,
            employee_number,
        )
        return [r[0] for r in rows]

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.schema}.directory_people")


def _person(row: asyncpg.Record) -> DirectoryPerson:
    values: dict[str, Any] = {name: row[name] for name in DirectoryPerson.__dataclass_fields__ if name != "profile"}
    return DirectoryPerson(**values, profile=DirectoryProfile.model_validate(orjson.loads(row["profile"])))
