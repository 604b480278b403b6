"""A database out of reach answers 503 problem+json with Retry-After on every
route, never 500, and the service recovers by itself when it comes back.

A real service app (enrollment, built through ``ServiceDefinition.build_app``
with its audit and idempotency layers) over real PostgreSQL, reached through
a TCP proxy that the test cuts: every connection dropped, new ones refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from libs.database import create_pool
from tests.support.enrollment import EnrollmentEnv, enrollment_env, programme_body
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy.to_database(database_url)
    try:
        yield proxy
    finally:
        await proxy.cut()


@pytest.fixture
async def env(proxy: TcpProxy, tmp_path: Path) -> AsyncIterator[EnrollmentEnv]:
    pool = await create_pool(proxy.url, min_size=1, max_size=4)
    try:
        async for environment in enrollment_env(pool, tmp_path):  # drops its schemas: the test restores the proxy
            yield environment
    finally:
        await pool.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["status"] == 503 and body["type"] == "urn:binome:problem:dependency-unavailable"


async def test_an_outage_is_a_503_on_every_kind_of_route_then_heals(env: EnrollmentEnv, proxy: TcpProxy) -> None:
    created = await env.programme()
    await proxy.cut()

    # A read, a command with an Idempotency-Key (idempotency and audit layers
    # reach the database before and after the route), and a route with a path id.
    assert_unavailable(await env.client.get("/v1/programmes", headers=env.auth()))
    assert_unavailable(
        await env.client.post("/v1/programmes", json=programme_body(), headers={**env.auth(), "Idempotency-Key": "k-1"})
    )
    assert_unavailable(await env.client.get(f"/v1/programmes/{created['programme_id']}", headers=env.auth()))
    assert (await env.client.get("/readyz")).status_code == 503

    await proxy.restore()  # the database is back: no restart of anything
    listed = await env.client.get("/v1/programmes", headers=env.auth())
    assert listed.status_code == 200, listed.text
    retried = await env.client.post("/v1/programmes", json=programme_body(), headers={**env.auth(), "Idempotency-Key": "k-1"})
    assert retried.status_code == 201, retried.text
    assert (await env.client.get("/readyz")).status_code == 200
