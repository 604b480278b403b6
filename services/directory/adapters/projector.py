"""Events -> the ``people`` read table, inside the transaction that appends
the events (and again, from the whole log, by ``rebuild``).

``apply`` is the only code that writes the table, so it stays a pure function
of the log. An erased person keeps a row (their id may still be a manager
reference in history) with every personal column emptied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from libs.events.contexts.directory import (
    PersonDeactivated,
    PersonDeleted,
    PersonErased,
    PersonProvisioned,
    PersonReactivated,
    PersonState,
    PersonUpdated,
)
from libs.database import jsonb
from libs.domain.projector import InlineProjector
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore
from libs.gdpr.personal import ERASED
from services.directory.domain.errors import UserNameTaken

#: The columns a state event sets (beside ids, version and times).
STATE_COLUMNS = (
    "user_name", "external_id", "employee_number", "display_name", "given_name", "family_name", "title", "email",
    "manager_id", "country", "entity", "job_level", "business_function", "organization", "division", "department",
    "cost_center", "preferred_language", "locale", "timezone", "active", "state",
)
#: What erasure empties.
PERSONAL_COLUMNS = ("user_name", "external_id", "employee_number", "display_name", "given_name", "family_name",
                    "title", "email", "manager_id")
UNIQUE_USER_NAME = "people_unique_user_name"


def _known(value: str | None) -> str | None:
    """A personal value, or None once its owner is erased (a rebuild reads
    erased people's values as ``ERASED``; no two of them may hold a userName)."""
    return None if value == ERASED else value


def state_columns(event: PersonState) -> list[Any]:
    """The values of ``STATE_COLUMNS`` for a state event, in that order."""
    identity, profile = event.identity, event.profile
    emails = identity.emails
    email = next((e.value for e in emails if e.primary), emails[0].value if emails else None)
    manager_id = _known(event.manager_id)
    state = {"identity": identity.model_dump(mode="json"), "manager_id": manager_id,
             "profile": profile.model_dump(mode="json"), "active": event.active}
    return [
        *(_known(v) for v in (identity.user_name, identity.external_id, identity.employee_number,
                              identity.display_name, identity.given_name, identity.family_name, identity.title,
                              email)),
        manager_id,
        profile.country, profile.entity, profile.job_level, profile.business_function, profile.organization,
        profile.division, profile.department, profile.cost_center, profile.preferred_language, profile.locale,
        profile.timezone, event.is_active, jsonb(state),
    ]


class Projector(InlineProjector):
    context = "directory"

    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        values = ", ".join(f"${i}" for i in range(6, 6 + len(STATE_COLUMNS)))
        self._sql_provisioned = f"""
            INSERT INTO {s}.people (person_id, organisation, version, created_at, last_modified,
                                    {", ".join(STATE_COLUMNS)})
            VALUES ($1, $2, $3, $4, $5, {values})"""
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(STATE_COLUMNS, start=4))
        self._sql_updated = f"UPDATE {s}.people SET version = $2, last_modified = $3, {sets} WHERE person_id = $1"
        # ``active`` is whether the person is active; ``state.active`` what HR
        # stated (None stays None on a return: it already counts as active).
        self._sql_active = f"""
            UPDATE {s}.people SET version = $2, last_modified = $3, active = $4,
                   state = CASE WHEN NOT $4 OR state->'active' = 'false'::jsonb
                                THEN jsonb_set(state, '{{active}}', to_jsonb($4::boolean)) ELSE state END
            WHERE person_id = $1"""
        self._sql_deleted = f"UPDATE {s}.people SET version = $2, last_modified = $3, deleted = true WHERE person_id = $1"
        emptied = ", ".join(f"{c} = NULL" for c in PERSONAL_COLUMNS)
        self._sql_erased = f"""
            UPDATE {s}.people SET version = $2, last_modified = $3, erased = true, deleted = true, {emptied},
                   state = jsonb_set(state, '{{identity}}', '{{"user_name": "[erased]"}}'::jsonb) - 'manager_id'
            WHERE person_id = $1"""

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """A command's new events (the repository's call): a ``userName``
        another person of the organisation holds is refused here, by the
        unique index, in the command's transaction (``UserNameTaken``)."""
        try:
            await super().apply(conn, envelopes)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == UNIQUE_USER_NAME:
                raise UserNameTaken() from exc
            raise

    async def apply_log(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """The log's events as they are (``rebuild``: no command to refuse)."""
        await super().apply(conn, envelopes)

    async def on_PersonProvisioned(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonProvisioned) -> None:
        at = envelope.time
        await conn.execute(self._sql_provisioned, event.person_id, envelope.tenant, envelope.sequence, at, at,
                           *state_columns(event))

    async def on_PersonUpdated(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonUpdated) -> None:
        await conn.execute(self._sql_updated, event.person_id, envelope.sequence, envelope.time, *state_columns(event))

    async def on_PersonDeactivated(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonDeactivated) -> None:
        await conn.execute(self._sql_active, event.person_id, envelope.sequence, envelope.time, False)

    async def on_PersonReactivated(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonReactivated) -> None:
        await conn.execute(self._sql_active, event.person_id, envelope.sequence, envelope.time, True)

    async def on_PersonDeleted(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonDeleted) -> None:
        await conn.execute(self._sql_deleted, event.person_id, envelope.sequence, envelope.time)

    async def on_PersonErased(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonErased) -> None:
        await conn.execute(self._sql_erased, event.person_id, envelope.sequence, envelope.time)

    async def rebuild(self, conn: asyncpg.Connection, store: EventStore, batch: int = 1000) -> int:
        """Empty the table and apply the whole log again, inside the caller's
        transaction (writers wait meanwhile); return the events applied."""
        await conn.execute(f"TRUNCATE {self.schema}.people")
        applied = 0
        async for envelope in store.iterate_log_exclusively(conn, batch):
            await self.apply_log(conn, [envelope])
            applied += 1
        return applied
