"""The directory service over a test schema, a SCIM client, tokens and User bodies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.gdpr.masters import MasterKeys
from libs.gdpr.personal import PersonalData
from libs.gdpr.vault import KeyVault, migrate_vault
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.directory import SERVICE

ORG = "org-a"
OTHER_ORG = "org-b"
SCIM = "application/scim+json"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BINOME = "urn:binome:params:scim:schemas:extension:binome:2.0:User"


@dataclass
class DirectoryEnv:
    pool: asyncpg.Pool
    schema: str
    store: EventStore
    client: httpx.AsyncClient
    data_dir: Path
    vault: KeyVault

    def auth(self, *roles: str, org: str = ORG, sub: str = "hr-system") -> dict[str, str]:
        token = mint(sub, org, roles or ("provisioning",), (), data_dir=self.data_dir, client_id="hr-connector")
        return {"Authorization": f"Bearer {token}", "Accept": SCIM}

    async def count_events(self) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {self.schema}.events")

    async def event_types(self, person_id: str) -> list[str]:
        rows = await self.pool.fetch(
            f"SELECT type FROM {self.schema}.events WHERE stream_id = $1 ORDER BY version", person_id
        )
        return [r["type"].split(".")[2] for r in rows]

    async def create(self, body: dict[str, Any], org: str = ORG) -> dict[str, Any]:
        """POST /v2/Users as the organisation's provisioning client; must succeed."""
        response = await self.client.post("/v2/Users", json=body, headers=self.auth(org=org))
        assert response.status_code == 201, response.text
        return response.json()


async def directory_env(pool: asyncpg.Pool, data_dir: Path) -> AsyncIterator[DirectoryEnv]:
    """A migrated schema of its own, the app over it, and an ASGI client."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    vault_schema = f"{schema}_vault"
    async with pool.acquire() as conn:
        await migrate(conn, schema, SERVICE.migrations)
        await migrate_vault(conn, vault_schema)
    settings = Settings(data_dir=data_dir)
    vault = KeyVault(pool, vault_schema, MasterKeys.from_settings(settings))
    store = EventStore(pool, schema, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", service="directory",
                       personal=PersonalData(vault))
    ctx = ServiceContext("directory", pool, store, "", settings, TokenVerifier.from_settings(settings), vault)
    transport = httpx.ASGITransport(app=SERVICE.build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://directory") as client:
        try:
            yield DirectoryEnv(pool, schema, store, client, data_dir, vault)
        finally:
            await pool.execute(f"DROP SCHEMA {schema} CASCADE")
            await pool.execute(f"DROP SCHEMA {vault_schema} CASCADE")


def user(user_name: str, *, manager: str | None = None, active: bool = True, **binome: Any) -> dict[str, Any]:
    """A User with both extensions, as an HR connector sends it."""
    number = user_name.split("@")[0].upper()
    enterprise: dict[str, Any] = {"employeeNumber": number, "department": "Finance", "division": "Group",
                                  "organization": "Acme"}
    if manager is not None:
        enterprise["manager"] = {"value": manager}
    return {
        "schemas": [CORE, ENTERPRISE, BINOME],
        "userName": user_name,
        "externalId": f"ext-{number}",
        "name": {"givenName": "Given", "familyName": number.title()},
        "displayName": f"Person {number}",
        "emails": [{"value": user_name if "@" in user_name else f"{user_name}@example.com", "type": "work",
                    "primary": True}],
        "preferredLanguage": "fr-FR",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "active": active,
        ENTERPRISE: enterprise,
        BINOME: {"country": "FR", "entity": "Acme France", "jobLevel": 5, "businessFunction": "finance",
                 "languages": "fr,en", **binome},
    }
