"""The audit trail on a real PostgreSQL: every /v1 request is recorded with
who, what and the decision (denials included), never bodies; only the global
HR admin of the organisation reads it; nobody can rewrite it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

from libs.api.app import create_service_app
from libs.api.security import requires
from libs.audit.api import install_audit
from libs.audit.trail import AuditRecord, AuditTrail
from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE, Principal
from libs.auth.tokens import TokenVerifier

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
SECRET = "canary-body-value-91d2"


def token(sub: str, *roles: str, org: str = "acme", countries: tuple[str, ...] = ()) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": "idp", "aud": "binome", "sub": sub, "org": org, "roles": list(roles),
              "countries": list(countries), "iat": now, "exp": now + 60, "client_id": "hr-portal"}
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='RS256')}", "Correlation-Id": f"c-{sub}"}


class Note(BaseModel):
    text: str


def build_app(pool: asyncpg.Pool, schema: str) -> FastAPI:
    app = create_service_app("test", title="t", version="1",
                             verifier=TokenVerifier(issuer="idp", audience="binome", public_key=PUBLIC_PEM))

    @app.post("/v1/participants/{participant_id}/notes")
    async def add_note(participant_id: uuid.UUID, body: Note, request: Request,
                       who: Principal = Depends(requires(HR_ADMIN, REGIONAL_COMMITTEE))) -> dict[str, str]:
        request.state.audit_country = "FR"
        return {"ok": "yes"}

    install_audit(app, AuditTrail(pool, schema))
    return app


@pytest.fixture
async def client(pool: asyncpg.Pool, schema: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(pool, schema))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_changes_and_denials_are_recorded_without_their_values(
    client: httpx.AsyncClient, pool: asyncpg.Pool, schema: str
) -> None:
    pid = uuid.uuid4()
    url = f"/v1/participants/{pid}/notes"
    assert (await client.post(url, json={"text": SECRET}, headers=token("hr-1", HR_ADMIN))).status_code == 200
    assert (await client.post(url, json={"text": SECRET})).status_code == 401
    assert (await client.post(url, json={"text": SECRET}, headers=token("ops-1", "ops"))).status_code == 403
    assert (await client.post(url, json={"nope": 1}, headers=token("hr-1", HR_ADMIN))).status_code == 422
    assert (await client.get("/healthz")).status_code == 200  # ops routes are not audited

    rows = await pool.fetch(f"SELECT * FROM {schema}.audit_log ORDER BY id")
    assert [(r["subject"], r["decision"], r["status"]) for r in rows] == [
        ("hr-1", "allowed", 200), (None, "denied", 401), ("ops-1", "denied", 403), ("hr-1", "invalid", 422)
    ]
    first = rows[0]
    assert first["action"] == "POST /v1/participants/{participant_id}/notes"
    assert first["organisation"] == "acme" and first["client_id"] == "hr-portal" and first["roles"] == [HR_ADMIN]
    assert first["country"] == "FR" and first["correlation_id"] == "c-hr-1"
    assert str(pid) in first["object"]
    dump = str([dict(r) for r in rows])
    assert SECRET not in dump


async def test_only_the_hr_admin_reads_the_trail_of_its_own_organisation(client: httpx.AsyncClient) -> None:
    pid = uuid.uuid4()
    await client.post(f"/v1/participants/{pid}/notes", json={"text": "x"}, headers=token("hr-1", HR_ADMIN))
    await client.post(f"/v1/participants/{pid}/notes", json={"text": "x"}, headers=token("hr-9", HR_ADMIN, org="other"))
    committee = token("c-1", REGIONAL_COMMITTEE, countries=("FR",))
    assert (await client.get("/v1/audit", headers=committee)).status_code == 403

    page = (await client.get("/v1/audit", params={"object_id": str(pid)}, headers=token("hr-2", HR_ADMIN))).json()
    assert [e["subject"] for e in page["items"]] == ["hr-1"]  # not the other organisation's hr-9

    everything = (await client.get("/v1/audit", params={"limit": 2}, headers=token("hr-2", HR_ADMIN))).json()
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    rest = (await client.get("/v1/audit", params={"limit": 2, "cursor": everything["next_cursor"]},
                             headers=token("hr-2", HR_ADMIN))).json()
    seen = [e["id"] for e in everything["items"] + rest["items"]]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)
    denied = (await client.get("/v1/audit", params={"decision": "denied"}, headers=token("hr-2", HR_ADMIN))).json()
    assert denied["items"] and {e["subject"] for e in denied["items"]} == {"c-1"}


async def test_the_trail_is_append_only(client: httpx.AsyncClient, pool: asyncpg.Pool, schema: str) -> None:
    await client.post(f"/v1/participants/{uuid.uuid4()}/notes", json={"text": "x"}, headers=token("hr-1", HR_ADMIN))
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute(f"UPDATE {schema}.audit_log SET subject = 'someone else'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute(f"DELETE FROM {schema}.audit_log")
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.audit_log WHERE subject = 'hr-1'") == 1


# --- group commit ------------------------------------------------------------


class CountingPool:
    """The pool, counting the statements that write records."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.writes = pool, []

    async def executemany(self, query: str, rows: list) -> None:
        self.writes.append(len(rows))
        await self.pool.executemany(query, rows)


def audit_record(i: int) -> AuditRecord:
    return AuditRecord(action="GET /v1/things/{id}", status=200, object={"id": str(i)}, subject=f"user-{i}",
                       organisation="acme", roles=("hr_admin",), correlation_id=f"g-{i}")


async def test_records_arriving_during_a_write_go_in_together(pool: asyncpg.Pool, schema: str) -> None:
    counting = CountingPool(pool)
    trail = AuditTrail(counting, schema)  # type: ignore[arg-type]
    await trail.record(audit_record(0))  # alone: written at once, by itself
    assert counting.writes == [1]
    await asyncio.gather(*(trail.record(audit_record(i)) for i in range(1, 41)))
    # Each call returned once its record was committed, and most shared a statement.
    rows = await pool.fetch(f"SELECT subject, object FROM {schema}.audit_log ORDER BY id")
    assert sorted(r["subject"] for r in rows) == sorted(f"user-{i}" for i in range(41))
    assert sum(counting.writes) == 41 and len(counting.writes) <= 3, counting.writes


async def test_a_record_postgresql_refuses_fails_alone(pool: asyncpg.Pool, schema: str) -> None:
    trail = AuditTrail(pool, schema)
    # A path parameter holding NUL: jsonb refuses \u0000. Its batch companions are still written.
    bad = AuditRecord(action="GET /v1/things/{id}", status=404, object={"id": "a\x00b"}, correlation_id="bad")
    await trail.record(audit_record(0))
    results = await asyncio.gather(
        trail.record(audit_record(1)), trail.record(bad), trail.record(audit_record(2)), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], asyncpg.PostgresError)
    subjects = await pool.fetch(f"SELECT subject FROM {schema}.audit_log ORDER BY id")
    assert sorted(r["subject"] for r in subjects) == ["user-0", "user-1", "user-2"]


async def test_a_caller_cancelled_meanwhile_does_not_lose_its_record(pool: asyncpg.Pool, schema: str) -> None:
    trail = AuditTrail(pool, schema)
    caller = asyncio.create_task(trail.record(audit_record(7)))
    await asyncio.sleep(0)  # the write has started
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await trail.record(audit_record(8))  # after the write in progress
    # Record 7's write began first but may commit after record 8's (another
    # writer took 8): it is still committed, not dropped with its caller.
    for _ in range(100):
        written = await pool.fetchval(f"SELECT count(*) FROM {schema}.audit_log WHERE subject IN ('user-7', 'user-8')")
        if written == 2:
            break
        await asyncio.sleep(0.05)
    assert written == 2


async def test_a_slow_write_does_not_hold_the_records_after_it(pool: asyncpg.Pool, schema: str) -> None:
    release = asyncio.Event()

    class SlowFirstWrite(CountingPool):
        async def executemany(self, query: str, rows: list) -> None:
            if not self.writes:
                self.writes.append(len(rows))
                await release.wait()  # a commit stuck behind a slow disk
                await self.pool.executemany(query, rows)
            else:
                await super().executemany(query, rows)

    trail = AuditTrail(SlowFirstWrite(pool), schema)  # type: ignore[arg-type]
    stuck = asyncio.create_task(trail.record(audit_record(1)))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(trail.record(audit_record(2)), timeout=5)  # another writer took it
    assert not stuck.done()
    release.set()
    await stuck
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.audit_log") == 2
