"""Abuse limits: body size (413, announced or streamed) and per-client rate
(429 with Retry-After), both problem+json, neither reaching the handler."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request

from libs.api.app import create_service_app
from limits import parse

from libs.api.limits import BodySizeLimit, LocalWindow, RateLimits
from libs.api.problems import PROBLEM_JSON
from libs.api.idempotency import IdempotencyKey, idempotency_key
from libs.api.security import current_principal, requires
from libs.auth.principal import HR_ADMIN
from libs.auth.principal import Principal
from libs.auth.tokens import TokenVerifier

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def bearer(sub: str, client_id: str | None = None, org: str = "acme") -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": "idp", "aud": "binome", "sub": sub, "org": org, "roles": ["hr_admin"], "iat": now, "exp": now + 60}
    if client_id:
        claims["client_id"] = client_id
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='RS256')}"}


def build_app(calls: list[int], limits: RateLimits | None = None) -> FastAPI:
    app = create_service_app("t", title="t", version="1",
                             verifier=TokenVerifier(issuer="idp", audience="binome", public_key=PUBLIC_PEM))

    @app.post("/v1/upload")
    async def upload(request: Request, who: Principal = Depends(current_principal)) -> dict[str, int]:
        body = await request.body()
        calls.append(len(body))
        return {"bytes": len(body)}

    app.state.rate_limits = limits or RateLimits("3/minute")
    app.add_middleware(BodySizeLimit, max_bytes=1000)
    return app


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_an_announced_large_body_is_refused_before_the_app_reads_it() -> None:
    calls: list[int] = []
    async with await client_for(build_app(calls)) as c:
        ok = await c.post("/v1/upload", content=b"x" * 1000, headers=bearer("u1"))
        big = await c.post("/v1/upload", content=b"x" * 1001, headers=bearer("u1"))
    assert ok.status_code == 200 and ok.json() == {"bytes": 1000}
    assert big.status_code == 413 and big.headers["content-type"] == PROBLEM_JSON
    assert "1000 bytes" in big.json()["detail"]
    assert calls == [1000]


async def test_a_streamed_large_body_is_refused_too() -> None:
    calls: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    async with await client_for(build_app(calls)) as c:
        r = await c.post("/v1/upload", content=chunks(), headers=bearer("u1"))
    assert r.status_code == 413
    assert calls == []


async def test_a_client_over_its_rate_gets_429_with_retry_after_and_others_do_not() -> None:
    calls: list[int] = []
    async with await client_for(build_app(calls)) as c:
        statuses = [(await c.post("/v1/upload", content=b"a", headers=bearer("u1", "portal"))).status_code for _ in range(4)]
        # Another user of the same OAuth client shares its budget...
        shared = await c.post("/v1/upload", content=b"a", headers=bearer("u2", "portal"))
        # ...while another client, or the same client id in another organisation, does not.
        other = await c.post("/v1/upload", content=b"a", headers=bearer("u3", "mobile"))
        other_org = await c.post("/v1/upload", content=b"a", headers=bearer("u1", "portal", org="globex"))
    assert statuses == [200, 200, 200, 429]
    assert shared.status_code == 429
    limited = shared
    assert limited.headers["content-type"] == PROBLEM_JSON
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert other.status_code == 200 and other_org.status_code == 200
    assert len(calls) == 5


async def test_a_request_whose_dependencies_all_ask_for_the_caller_counts_once() -> None:
    """A command asks for its caller twice: its role check (``requires``, which
    takes the token straight from the bearer scheme) and its idempotency key
    (``current_principal``). The caller is authenticated, and counted, once."""
    calls: list[int] = []
    app = build_app(calls)

    @app.post("/v1/commands")
    async def command(
        who: Principal = Depends(requires(HR_ADMIN)), key: IdempotencyKey | None = Depends(idempotency_key)
    ) -> dict[str, str | None]:
        calls.append(1)
        return {"subject": who.subject, "key": key.key if key else None}

    async with await client_for(app) as c:
        answers = [
            await c.post("/v1/commands", json={}, headers={**bearer("u1"), "Idempotency-Key": f"k-{i}"})
            for i in range(4)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]  # "3/minute": three requests, not one and a half
    assert answers[0].json() == {"subject": "u1", "key": "k-0"}
    assert len(calls) == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_local_window_slides_without_a_timer_thread() -> None:
    import threading

    clock = FakeClock()
    threads = threading.active_count()
    window = LocalWindow(parse("3/minute"), clock)
    assert [window.hit("k") for _ in range(4)] == [True, True, True, False]
    assert window.retry_after("k") == 60
    clock.now = 60.0  # a new window: the previous one still weighs fully
    assert not window.hit("k")
    clock.now = 100.0  # two thirds of the previous window have slid out: 3 * 1/3 = 1 counted
    assert [window.hit("k") for _ in range(3)] == [True, True, False]
    assert window.hit("other")
    clock.now = 1000.0  # long after: the keys are swept on the next hit
    window.hit("new")
    assert set(window._counts) == {"new"}
    assert threading.active_count() == threads


async def test_apps_sharing_one_rate_limits_give_a_client_one_budget() -> None:
    shared = RateLimits("3/minute")
    calls: list[int] = []
    async with await client_for(build_app(calls, shared)) as a, await client_for(build_app(calls, shared)) as b:
        statuses = [(await c.post("/v1/upload", content=b"a", headers=bearer("u1"))).status_code for c in (a, b, a, b)]
    assert statuses == [200, 200, 200, 429]


async def test_failed_authentications_are_limited_per_source_and_valid_tokens_still_pass() -> None:
    calls: list[int] = []
    app = build_app(calls, RateLimits("100/minute", auth_failure_rate="2/minute"))
    async with await client_for(app) as c:
        bad = {"Authorization": "Bearer not-a-token"}
        statuses = [(await c.post("/v1/upload", content=b"a", headers=h)).status_code for h in (bad, {}, bad)]
        valid = await c.post("/v1/upload", content=b"a", headers=bearer("u1"))
    assert statuses == [401, 401, 429]
    assert valid.status_code == 200
