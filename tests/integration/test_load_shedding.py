"""Overload is shed, not queued; a request whose client gave up is cancelled.

Against a real uvicorn server: the in-flight limit answers 503 at once with
Retry-After while ops routes still answer; a client that disconnects while
its request runs gets its handler cancelled (it sees ``CancelledError``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from libs.api.app import create_service_app
from libs.api.shedding import InFlight, LoadShedding, ShedEarly
from libs.auth.tokens import TokenVerifier
from libs.observability.metrics import HTTP_REQUESTS_CANCELLED, HTTP_REQUESTS_SHED
from libs.settings import Settings
from tests.support.platform_process import free_port

pytestmark = pytest.mark.integration

LIMIT = 2


@dataclass
class Slow:
    """A handler that holds its slot until released, noting how it ended."""

    started: asyncio.Queue = field(default_factory=asyncio.Queue)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Queue = field(default_factory=asyncio.Queue)


def build_app(slow: Slow, service: str, tmp_path) -> FastAPI:
    app = create_service_app(service, title="probe", version="1", verifier=TokenVerifier.from_settings(Settings(data_dir=tmp_path)))

    async def hold(what: str) -> dict[str, str]:
        await slow.started.put(what)
        try:
            await slow.release.wait()
        except asyncio.CancelledError:
            await slow.cancelled.put(what)
            raise
        return {"held": what}

    @app.get("/v1/slow")
    async def slow_get() -> dict[str, str]:
        return await hold("get")

    @app.post("/v1/slow")
    async def slow_post(request: Request) -> dict[str, str]:
        await request.body()
        return await hold("post")

    app.add_middleware(LoadShedding, slots=InFlight(service, LIMIT))
    return app


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_requests_beyond_the_limit_are_shed_at_once(tmp_path) -> None:
    slow = Slow()
    async with serving(build_app(slow, "shed-probe", tmp_path)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        held = [asyncio.create_task(client.get("/v1/slow")) for _ in range(LIMIT)]
        for _ in range(LIMIT):
            await slow.started.get()
        before = HTTP_REQUESTS_SHED.labels("shed-probe")._value.get()

        shed = await client.get("/v1/slow")
        assert shed.status_code == 503
        assert shed.headers["content-type"] == "application/problem+json"
        assert shed.headers["retry-after"] == "1"
        assert shed.json()["type"] == "urn:binome:problem:overloaded"
        assert slow.started.empty()  # the shed request never reached the handler
        assert HTTP_REQUESTS_SHED.labels("shed-probe")._value.get() == before + 1
        for ops in ("/healthz", "/readyz", "/metrics"):  # probes are never shed
            assert (await client.get(ops)).status_code == 200

        slow.release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200] * LIMIT
        assert (await client.get("/v1/slow")).status_code == 200  # the slots came back


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_request_whose_client_disconnects_is_cancelled(tmp_path, method: str) -> None:
    slow = Slow()
    service = f"cancel-probe-{method.lower()}"
    async with serving(build_app(slow, service, tmp_path)) as url:
        before = HTTP_REQUESTS_CANCELLED.labels(service)._value.get()
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"a": 1}' if method == "POST" else b""
        writer.write(
            f"{method} /v1/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        await writer.drain()
        assert await asyncio.wait_for(slow.started.get(), 10) == method.lower()
        writer.close()  # the client gives up

        assert await asyncio.wait_for(slow.cancelled.get(), 10) == method.lower()
        for _ in range(100):  # counted once the middleware has unwound
            if HTTP_REQUESTS_CANCELLED.labels(service)._value.get() == before + 1:
                break
            await asyncio.sleep(0.02)
        assert HTTP_REQUESTS_CANCELLED.labels(service)._value.get() == before + 1
        # Its slot is free: LIMIT requests run again at once.
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            held = [asyncio.create_task(client.get("/v1/slow")) for _ in range(LIMIT)]
            for _ in range(LIMIT):
                await asyncio.wait_for(slow.started.get(), 10)
            slow.release.set()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200] * LIMIT


async def test_the_platform_refuses_a_full_service_before_its_own_stack(tmp_path) -> None:
    """``ShedEarly`` (in front of ``binome up``'s root app) answers for a full
    service at once; other services and the full one's probes still answer."""
    slow = Slow()
    full = InFlight("full-probe", LIMIT)
    root = FastAPI()
    root.mount("/full", build_app(slow, "full-probe", tmp_path))
    root.mount("/free", build_app(slow, "free-probe", tmp_path))
    reached_root: list[str] = []

    async def spy(scope, receive, send):  # the platform's own stack
        reached_root.append(scope["path"])
        await root(scope, receive, send)

    full.count = LIMIT  # every slot taken
    transport = httpx.ASGITransport(app=ShedEarly(spy, {"/full": full}))
    async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
        before = HTTP_REQUESTS_SHED.labels("full-probe")._value.get()
        shed = await client.get("/full/v1/slow")
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        assert shed.json()["type"] == "urn:binome:problem:overloaded"
        assert reached_root == []  # refused before the platform's middlewares and router
        assert HTTP_REQUESTS_SHED.labels("full-probe")._value.get() == before + 1
        assert (await client.get("/full/readyz")).status_code == 200
        slow.release.set()
        assert (await client.get("/free/v1/slow")).status_code == 200
