"""The enrollment service over a test schema, a client, tokens and bodies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from libs.api.held_reads import HeldReads
from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.gdpr.masters import MasterKeys
from libs.gdpr.personal import PersonalData
from libs.gdpr.vault import KeyVault, migrate_vault
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.enrollment import SERVICE

ORG = "org-a"


@dataclass
class EnrollmentEnv:
    pool: asyncpg.Pool
    schema: str
    topic_prefix: str
    store: EventStore
    client: httpx.AsyncClient
    data_dir: Path
    vault: KeyVault

    def auth(
        self,
        *roles: str,
        countries: Iterable[str] = (),
        sub: str = "user-1",
        org: str = ORG,
        client_id: str | None = None,
    ) -> dict[str, str]:
        token = mint(sub, org, roles or ("hr_admin",), countries, data_dir=self.data_dir, client_id=client_id)
        return {"Authorization": f"Bearer {token}"}

    async def count_events(self) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {self.schema}.events")

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """POST as a global HR admin (unless ``headers``); the call must succeed."""
        response = await self.client.post(path, json=body, headers=headers or self.auth())
        assert response.is_success, response.text
        return response.json()

    async def programme(self, **overrides: Any) -> dict[str, Any]:
        return await self.post("/v1/programmes", programme_body(**overrides))

    async def wave(self, programme_id: str, country: str = "FR", **overrides: Any) -> dict[str, Any]:
        return await self.post(f"/v1/programmes/{programme_id}/waves", wave_body(country, **overrides))

    async def enrol(self, wave_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.post(f"/v1/waves/{wave_id}/participants", body)


async def enrollment_env(
    pool: asyncpg.Pool, data_dir: Path, held_reads: HeldReads | None = None
) -> AsyncIterator[EnrollmentEnv]:
    """A migrated schema of its own, the app over it, and an ASGI client
    (``held_reads``: the lists' pages it holds; by default none)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    vault_schema = f"{schema}_vault"
    async with pool.acquire() as conn:
        await migrate(conn, schema, SERVICE.migrations)
        await migrate_vault(conn, vault_schema)
    settings = Settings(data_dir=data_dir)
    prefix = f"t{uuid.uuid4().hex[:10]}."
    vault = KeyVault(pool, vault_schema, MasterKeys.from_settings(settings))
    store = EventStore(pool, schema, topic_prefix=prefix, service="enrollment", personal=PersonalData(vault))
    ctx = ServiceContext("enrollment", pool, store, "", settings, TokenVerifier.from_settings(settings), vault)
    if held_reads is not None:
        ctx.held_reads = held_reads
    transport = httpx.ASGITransport(app=SERVICE.build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://enrollment") as client:
        try:
            yield EnrollmentEnv(pool, schema, prefix, store, client, data_dir, vault)
        finally:
            await pool.execute(f"DROP SCHEMA {schema} CASCADE")
            await pool.execute(f"DROP SCHEMA {vault_schema} CASCADE")


def programme_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Digital reverse mentoring 2026", "mode": "reverse", **overrides}


def wave_body(country: str = "FR", **overrides: Any) -> dict[str, Any]:
    return {
        "name": f"{country} wave 1",
        "region": "Europe",
        "country": country,
        "committee": f"committee-{country.lower()}",
        "starts_on": "2026-01-05",
        "ends_on": "2099-06-30",  # still running whatever the day: waves end by themselves (issue 19)
        "target_pairs": 30,
        **overrides,
    }


def person(employee_ref: str, role: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "role": role,
        "employee_ref": employee_ref,
        "display_name": f"Person {employee_ref}",
        "email": f"{employee_ref.lower()}@example.com",
        "motivation": "I want to learn and share.",
        "entity": "Acme France",
        "business_function": "finance",
        "job_level": 10 if role == "mentee" else 2,
        "tenure_years": 12 if role == "mentee" else 1,
        "birth_year": 1972 if role == "mentee" else 1999,
        "languages": ["fr", "en"],
        "time_zone": "Europe/Paris",
        "learner_profile": "experiential",
        "intentions": ["find_digital_profiles"] if role == "mentee" else ["understand_businesses"],
    }
    if role == "mentee":
        body["themes_wanted"] = [{"theme": "data_ai", "level": 1}]
    else:
        body["themes_offered"] = [{"theme": "data_ai", "level": 4}, {"theme": "cybersecurity", "level": 3}]
        body["capacity"] = 2
    body.update(overrides)
    return body


def mentee(employee_ref: str, **overrides: Any) -> dict[str, Any]:
    return person(employee_ref, "mentee", **overrides)


def mentor(employee_ref: str, **overrides: Any) -> dict[str, Any]:
    return person(employee_ref, "mentor", **overrides)
