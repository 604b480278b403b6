"""Idempotency-Key on the real database: the response is stored with the
command, replayed for a retry, refused for another request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from libs.api.app import create_service_app
from libs.api.idempotency import IdempotencyKey, IdempotencyKeys, idempotency_key, run_idempotently
from libs.api.problems import Problem
from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.settings import Settings

pytestmark = pytest.mark.integration


class ThingIn(BaseModel):
    value: int


def build_app(pool: asyncpg.Pool, schema: str, settings: Settings, keys: IdempotencyKeys) -> FastAPI:
    app = create_service_app("t", title="t", version="1", verifier=TokenVerifier.from_settings(settings))

    @app.post("/v1/things", status_code=201)
    async def create(body: ThingIn, key: IdempotencyKey | None = Depends(idempotency_key)) -> Response:
        async def work(conn: asyncpg.Connection) -> Response:
            thing_id = await conn.fetchval(f"INSERT INTO {schema}.things (value) VALUES ($1) RETURNING id", body.value)
            await asyncio.sleep(0.05)  # long enough for a concurrent retry to arrive
            if body.value < 0:
                raise Problem(422, detail="negative")
            return JSONResponse({"id": thing_id}, status_code=201, headers={"Location": f"/v1/things/{thing_id}"})

        return await run_idempotently(pool, keys, key, work)

    return app


@pytest.fixture
async def client(pool: asyncpg.Pool, schema: str, tmp_path) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    await pool.execute(f"CREATE TABLE {schema}.things (id serial PRIMARY KEY, value int NOT NULL)")
    settings = Settings(data_dir=tmp_path)
    app = build_app(pool, schema, settings, IdempotencyKeys(schema))
    token = mint("client-1", "org-a", ["hr_admin"], data_dir=tmp_path)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers={"Authorization": f"Bearer {token}"}
    ) as c:
        c.mint = lambda sub: mint(sub, "org-a", ["hr_admin"], data_dir=tmp_path)  # type: ignore[attr-defined]
        yield c


async def things(pool: asyncpg.Pool, schema: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {schema}.things")


async def test_retry_gets_the_stored_response_and_runs_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool, schema: str
) -> None:
    first = await client.post("/v1/things", json={"value": 1}, headers={"Idempotency-Key": "k-1"})
    again = await client.post("/v1/things", json={"value": 1}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert await things(pool, schema) == 1
    # Without a key, or with another key, a request runs.
    await client.post("/v1/things", json={"value": 1})
    await client.post("/v1/things", json={"value": 1}, headers={"Idempotency-Key": "k-2"})
    assert await things(pool, schema) == 3


async def test_same_key_for_another_request_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, schema: str
) -> None:
    await client.post("/v1/things", json={"value": 1}, headers={"Idempotency-Key": "k-1"})
    other = await client.post("/v1/things", json={"value": 2}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:binome:problem:idempotency-key-reused"
    assert await things(pool, schema) == 1


async def test_keys_belong_to_their_caller(client: httpx.AsyncClient, pool: asyncpg.Pool, schema: str) -> None:
    await client.post("/v1/things", json={"value": 1}, headers={"Idempotency-Key": "shared"})
    other_caller = {"Idempotency-Key": "shared", "Authorization": f"Bearer {client.mint('client-2')}"}  # type: ignore[attr-defined]
    response = await client.post("/v1/things", json={"value": 1}, headers=other_caller)
    assert response.status_code == 201 and "idempotent-replayed" not in response.headers
    assert await things(pool, schema) == 2


async def test_concurrent_retries_run_once(client: httpx.AsyncClient, pool: asyncpg.Pool, schema: str) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/things", json={"value": 7}, headers={"Idempotency-Key": "burst"}) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 4
    assert await things(pool, schema) == 1


async def test_a_failed_request_stores_nothing_and_may_be_retried(
    client: httpx.AsyncClient, pool: asyncpg.Pool, schema: str
) -> None:
    failed = await client.post("/v1/things", json={"value": -1}, headers={"Idempotency-Key": "k-f"})
    assert failed.status_code == 422
    assert await things(pool, schema) == 0  # the command rolled back with the claim
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.idempotency_keys") == 0


async def test_expired_keys_are_taken_over_and_purged(pool: asyncpg.Pool, schema: str) -> None:
    keys = IdempotencyKeys(schema, ttl=timedelta(milliseconds=1))
    key = IdempotencyKey('["org", "me"]', "k", "fp-1")
    async with pool.acquire() as conn:
        async with conn.transaction():
            assert await keys.claim(conn, key) is None
            await keys.complete(conn, key, JSONResponse({"n": 1}))
        await asyncio.sleep(0.01)
        async with conn.transaction():
            # Expired: another request may use the key again.
            assert await keys.claim(conn, IdempotencyKey('["org", "me"]', "k", "fp-2")) is None
            await keys.complete(conn, key, JSONResponse({"n": 2}))
        await asyncio.sleep(0.01)
        assert await keys.purge_expired(conn) == 1
