"""A committee's contacts: who reads the digest written to the committee of
one country of an organisation, in which language and time zone.

The addresses are personal data and are handled as participants' are
(``recipients``): kept in the service's own table only, never put in an
event, a log line or the delivery log (which names the committee by
``committee_id``), and a message body naming them is dropped once
delivered. An HR admin replaces them whole (``PUT``); an empty list stops
the digest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from typing import Any

import asyncpg

_NAMESPACE = uuid.UUID("0b6e8f3c-2a51-4c47-9d0e-5e1c7a2b9f44")


def committee_id(organisation: str, country: str) -> uuid.UUID:
    """The committee as a recipient of the delivery log (stable, no address in it)."""
    return uuid.uuid5(_NAMESPACE, f"{organisation}/{country}")


@dataclass(frozen=True)
class Committee:
    organisation: str
    country: str
    addresses: tuple[str, ...]
    language: str
    time_zone: str

    @property
    def committee_id(self) -> uuid.UUID:
        return committee_id(self.organisation, self.country)

    @property
    def to(self) -> list[Address]:
        return [Address(addr_spec=a) for a in self.addresses]


class Contacts:
    def __init__(self, schema: str) -> None:
        self._sql_get = f"""SELECT organisation, country, addresses, language, time_zone, updated_at
                            FROM {schema}.committee_contacts WHERE organisation = $1 AND country = $2"""
        self._sql_put = f"""
            INSERT INTO {schema}.committee_contacts (organisation, country, addresses, language, time_zone,
                                                     updated_at, updated_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (organisation, country) DO UPDATE SET addresses = EXCLUDED.addresses,
                language = EXCLUDED.language, time_zone = EXCLUDED.time_zone, updated_at = EXCLUDED.updated_at,
                updated_by = EXCLUDED.updated_by"""

    async def row(self, db: asyncpg.Connection | asyncpg.Pool, organisation: str, country: str) -> dict[str, Any] | None:
        found = await db.fetchrow(self._sql_get, organisation, country)
        return dict(found) if found else None

    async def committee(self, conn: asyncpg.Connection, organisation: str, country: str) -> Committee | None:
        """The committee to write to; None when it has no address."""
        row = await self.row(conn, organisation, country)
        if row is None or not row["addresses"]:
            return None
        return Committee(organisation, country, tuple(row["addresses"]), row["language"], row["time_zone"])

    async def put(
        self, conn: asyncpg.Connection, organisation: str, country: str, *, addresses: list[str], language: str,
        time_zone: str, at: datetime, by: str,
    ) -> None:
        await conn.execute(self._sql_put, organisation, country, addresses, language, time_zone, at, by)
