"""Webhook endpoints of an organisation: register, read, change, rotate the
secret, delete, test, and redeliver what failed.

Who may do what. An HR admin manages every endpoint of its organisation: one
for every event (no ``countries``) or one limited to some countries. A
regional committee manages only endpoints limited to its own countries: it
must name ``countries``, each one of its grant, and it sees an endpoint only
if every country of it is one of its own (an organisation-wide endpoint
would carry other countries' events). Anything else is "not found", as an
object of another organisation or country is everywhere in Binome.

Secrets: generated here, returned once (on registration and rotation),
stored sealed with the endpoint's own data key in the GDPR vault (key id =
endpoint id, libs/gdpr/cipher.py); deleting the endpoint shreds that key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from libs.auth.principal import Principal, normalise_country
from libs.domain.errors import InvalidState, Issues, NotFound
from libs.events.registry import EventRegistry, registry
from libs.gdpr.cipher import open_sealed, seal
from libs.gdpr.vault import KeyVault
from libs.runtime.clock import Clock
from services.notifications.adapters.webhook_http import UnsafeUrl, check_url
from services.notifications.domain.webhooks import ROTATION_OVERLAP, new_secret, pattern_error

ENDPOINT = "webhook endpoint"
DELIVERY = "webhook delivery"
#: Idempotency-Key -> endpoint id, per caller.
IDEMPOTENT_IDS = uuid.UUID("0b7f5c8e-3d0a-4c51-9a55-5f2e3b0f7a11")

COLUMNS = """endpoint_id, organisation, url, event_types, countries, description, enabled, disabled_reason,
             disabled_at, failing_since, previous_secret_until, created_by, created_at, updated_by, updated_at"""


@dataclass(frozen=True)
class Secrets:
    """Sealing and opening an endpoint's secrets with its vault key."""

    vault: KeyVault

    async def seal(self, endpoint_id: uuid.UUID, secret: str, conn: asyncpg.Connection | None = None) -> str:
        key = await self.vault.key_for(endpoint_id, (), None, conn=conn)
        return seal(secret, endpoint_id, key)

    async def open(
        self, endpoint_id: uuid.UUID, *sealed: str | None, conn: asyncpg.Connection | None = None
    ) -> list[str]:
        """The secrets that open (a deleted endpoint's open to nothing)."""
        key = (await self.vault.keys([endpoint_id], conn=conn)).get(endpoint_id)
        return [open_sealed(s, key) for s in sealed if s is not None and key is not None]


class WebhookEndpoints:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        vault: KeyVault,
        clock: Clock,
        *,
        dev_mode: bool,
        events: EventRegistry = registry,
    ) -> None:
        self.pool, self.schema, self.clock, self.dev_mode, self.events = pool, schema, clock, dev_mode, events
        self.secrets = Secrets(vault)
        self.vault = vault

    # -- checks -----------------------------------------------------------------

    async def _check(
        self, who: Principal, url: str | None, event_types: list[str] | None, countries: list[str] | None = None,
        *, registering: bool = False,
    ) -> None:
        """Every broken rule of the settings at once (422 naming each field)."""
        issues = Issues()
        if url is not None:
            try:
                await check_url(url, dev_mode=self.dev_mode)
            except UnsafeUrl as exc:
                issues.add("url", str(exc))
        for i, pattern in enumerate(event_types or ()):
            problem = pattern_error(pattern, self.events)
            if problem:
                issues.add(f"event_types.{i}", problem)
        if registering and not who.sees_all_countries():
            if not countries:
                issues.add("countries", "a regional committee's endpoint names the countries it is for")
            for i, country in enumerate(countries or ()):
                issues.check(country in who.countries, f"countries.{i}", f"{country} is not one of your countries")
        issues.raise_if_any()

    @staticmethod
    def _visible(who: Principal, row: asyncpg.Record | None) -> bool:
        if row is None or row["organisation"] != who.organisation:
            return False
        if who.sees_all_countries():
            return True
        return row["countries"] is not None and all(who.can_see_country(c) for c in row["countries"])

    async def _row(self, conn: Any, who: Principal, endpoint_id: uuid.UUID, *, lock: bool = False) -> asyncpg.Record:
        row = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM {self.schema}.webhook_endpoints WHERE endpoint_id = $1"
            + (" FOR UPDATE" if lock else ""),
            endpoint_id,
        )
        if not self._visible(who, row):
            raise NotFound(ENDPOINT, endpoint_id)
        return row

    # -- endpoints ----------------------------------------------------------------

    async def register(
        self,
        who: Principal,
        *,
        url: str,
        event_types: list[str],
        countries: list[str] | None,
        description: str | None,
        idempotency_key: str | None = None,
    ) -> tuple[asyncpg.Record, str | None]:
        """The endpoint and its secret (None: an Idempotency-Key replay; the
        secret was shown once, rotate it if it was lost)."""
        countries = sorted({normalise_country(c) for c in countries}) if countries is not None else None
        await self._check(who, url, event_types, countries, registering=True)
        endpoint_id = (
            uuid.uuid5(IDEMPOTENT_IDS, f"{who.organisation}\0{who.subject}\0{idempotency_key}")
            if idempotency_key
            else uuid.uuid4()
        )
        secret, now = new_secret(), self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            existing = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM {self.schema}.webhook_endpoints WHERE endpoint_id = $1", endpoint_id
            )
            if existing is not None:
                return existing, None
            row = await conn.fetchrow(
                f"""INSERT INTO {self.schema}.webhook_endpoints
                        (endpoint_id, organisation, url, event_types, countries, description, secret,
                         created_by, created_at, updated_by, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9) RETURNING {COLUMNS}""",
                endpoint_id, who.organisation, url, event_types, countries, description,
                await self.secrets.seal(endpoint_id, secret), who.subject, now,
            )
        return row, secret

    async def get(self, who: Principal, endpoint_id: uuid.UUID) -> asyncpg.Record:
        return await self._row(self.pool, who, endpoint_id)

    async def list(self, who: Principal, after: str | None, limit: int) -> list[asyncpg.Record]:
        """Up to ``limit + 1`` endpoints the caller sees, by id after ``after``."""
        rows = await self.pool.fetch(
            f"""SELECT {COLUMNS} FROM {self.schema}.webhook_endpoints
                WHERE organisation = $1 AND ($2::uuid IS NULL OR endpoint_id > $2)
                  AND ($3 OR (countries IS NOT NULL AND countries <@ $4::text[]))
                ORDER BY endpoint_id LIMIT $5""",
            who.organisation, after, who.sees_all_countries(), sorted(who.countries), limit + 1,
        )
        return rows

    async def update(self, who: Principal, endpoint_id: uuid.UUID, changes: dict[str, Any]) -> asyncpg.Record:
        """Change url, event_types, description and/or enabled (enabling
        clears why it was disabled and its failure streak)."""
        await self._row(self.pool, who, endpoint_id)  # not found before any other answer
        await self._check(who, changes.get("url"), changes.get("event_types"))
        async with self.pool.acquire() as conn, conn.transaction():
            await self._row(conn, who, endpoint_id, lock=True)
            enabled = changes.get("enabled")
            return await conn.fetchrow(
                f"""UPDATE {self.schema}.webhook_endpoints SET
                        url = coalesce($2, url),
                        event_types = coalesce($3, event_types),
                        description = CASE WHEN $4 THEN $5 ELSE description END,
                        enabled = coalesce($6, enabled),
                        disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason
                                               WHEN $6 THEN NULL ELSE $9 END,
                        disabled_at = CASE WHEN $6 IS NULL THEN disabled_at WHEN $6 THEN NULL ELSE $8 END,
                        failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END,
                        updated_by = $7, updated_at = $8
                    WHERE endpoint_id = $1 RETURNING {COLUMNS}""",
                endpoint_id, changes.get("url"), changes.get("event_types"), "description" in changes,
                changes.get("description"), enabled, who.subject, self.clock(), f"disabled by {who.subject}",
            )

    async def rotate(self, who: Principal, endpoint_id: uuid.UUID) -> tuple[asyncpg.Record, str]:
        """A new secret; the previous one still signs for ``ROTATION_OVERLAP``
        (each delivery then carries both signatures), so a receiver can switch
        without refusing anything."""
        secret, now = new_secret(), self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            await self._row(conn, who, endpoint_id, lock=True)
            row = await conn.fetchrow(
                f"""UPDATE {self.schema}.webhook_endpoints SET
                        previous_secret = secret, previous_secret_until = $2, secret = $3,
                        updated_by = $4, updated_at = $5
                    WHERE endpoint_id = $1 RETURNING {COLUMNS}""",
                endpoint_id, now + ROTATION_OVERLAP, await self.secrets.seal(endpoint_id, secret), who.subject, now,
            )
        return row, secret

    async def delete(self, who: Principal, endpoint_id: uuid.UUID) -> None:
        """The endpoint and its deliveries go; its secrets' key is shredded."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._row(conn, who, endpoint_id, lock=True)
            await conn.execute(f"DELETE FROM {self.schema}.webhook_endpoints WHERE endpoint_id = $1", endpoint_id)
        await self.vault.shred_key(endpoint_id)

    async def signing_secrets(self, endpoint_id: uuid.UUID) -> list[str]:
        """The secrets that sign now: the current one, and the previous one
        until its overlap ends."""
        row = await self.pool.fetchrow(
            f"SELECT secret, previous_secret, previous_secret_until FROM {self.schema}.webhook_endpoints"
            " WHERE endpoint_id = $1",
            endpoint_id,
        )
        if row is None:
            return []
        return await self.secrets.open(endpoint_id, *active(row, self.clock()))

    # -- deliveries ---------------------------------------------------------------

    async def deliveries(
        self, who: Principal, endpoint_id: uuid.UUID, status: str | None, after: str | None, limit: int
    ) -> list[asyncpg.Record]:
        await self._row(self.pool, who, endpoint_id)
        return await self.pool.fetch(
            f"""SELECT delivery_id, endpoint_id, event_id, event_type, status, attempts, due_at, last_attempt_at,
                       last_status_code, last_error, created_at, delivered_at
                FROM {self.schema}.webhook_deliveries
                WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR delivery_id > $3)
                ORDER BY delivery_id LIMIT $4""",
            endpoint_id, status, after, limit + 1,
        )

    async def redeliver(self, who: Principal, endpoint_id: uuid.UUID, delivery_id: uuid.UUID | None) -> int:
        """Queue failed deliveries again (one, or all of the endpoint's), due
        now, with a fresh attempt count; returns how many."""
        async with self.pool.acquire() as conn, conn.transaction():
            endpoint = await self._row(conn, who, endpoint_id, lock=True)
            if not endpoint["enabled"]:
                raise InvalidState("the endpoint is disabled: enable it first (PATCH enabled: true)")
            if delivery_id is not None:
                status = await conn.fetchval(
                    f"SELECT status FROM {self.schema}.webhook_deliveries WHERE delivery_id = $1 AND endpoint_id = $2",
                    delivery_id, endpoint_id,
                )
                if status is None:
                    raise NotFound(DELIVERY, delivery_id)
                if status != "failed":
                    raise InvalidState(f"the delivery is {status}: only a failed delivery is redelivered")
            result = await conn.execute(
                f"""UPDATE {self.schema}.webhook_deliveries
                    SET status = 'pending', attempts = 0, due_at = $3, last_error = NULL, last_status_code = NULL
                    WHERE endpoint_id = $1 AND status = 'failed' AND ($2::uuid IS NULL OR delivery_id = $2)""",
                endpoint_id, delivery_id, self.clock(),
            )
        return int(result.split()[-1])


def active(row: asyncpg.Record, now: datetime) -> list[str]:
    """The sealed secrets that sign at ``now``."""
    previous = row["previous_secret"]
    if previous is not None and row["previous_secret_until"] is not None and row["previous_secret_until"] > now:
        return [row["secret"], previous]
    return [row["secret"]]

