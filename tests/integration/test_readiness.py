"""``database_check``: the readiness check every service and the platform use."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from libs.database import create_pool
from libs.observability.health import database_check, install_ops_routes

pytestmark = pytest.mark.integration


async def test_readyz_follows_the_database(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    app = FastAPI()
    install_ops_routes(app, "probe", readiness_checks={"database": database_check(pool)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
        assert (await client.get("/readyz")).status_code == 200
        await pool.close()  # the database is out of reach
        gone = await client.get("/readyz")
    assert gone.status_code == 503 and "database" in gone.text


async def test_broker_check_wants_a_broker_that_answers(own_broker) -> None:
    import asyncio

    from libs.observability.health import broker_check

    check = broker_check(own_broker.bootstrap)
    assert await check() is True
    own_broker.stop()
    assert await check() is False  # refused
    # Something else listens on the port and never answers: not a broker.
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", own_broker.port)
    try:
        assert await check() is False
    finally:
        silent.close()
