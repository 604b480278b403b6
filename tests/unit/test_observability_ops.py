"""/metrics, /healthz, /readyz and the request metrics middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from prometheus_client import REGISTRY

from libs.api.app import create_service_app
from libs.auth.tokens import TokenVerifier
from libs.observability.metrics import EVENTS_APPENDED, UNMATCHED_ROUTE

PUBLIC_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def build_app(service: str, checks: dict | None = None) -> FastAPI:
    verifier = TokenVerifier(issuer="idp", audience="binome", public_key=PUBLIC_PEM)
    app = create_service_app(service, title=service, version="1", verifier=verifier, readiness_checks=checks)

    @app.get("/v1/pairs/{pair_id}")
    async def get_pair(pair_id: str) -> dict[str, str]:
        return {"id": pair_id}

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(build_app("obs-a")) as c:
        yield c


def requests_total(service: str, route: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "binome_http_requests_total",
        {"service": service, "route": route, "method": method, "status": status},
    )
    return value or 0.0


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    before = requests_total("obs-a", "/v1/pairs/{pair_id}", "GET", "200")
    await client.get("/v1/pairs/p-1")
    await client.get("/v1/pairs/p-2")
    assert requests_total("obs-a", "/v1/pairs/{pair_id}", "GET", "200") == before + 2
    # Never one series per raw path.
    assert REGISTRY.get_sample_value(
        "binome_http_requests_total",
        {"service": "obs-a", "route": "/v1/pairs/p-1", "method": "GET", "status": "200"},
    ) is None
    count = REGISTRY.get_sample_value(
        "binome_http_request_duration_seconds_count",
        {"service": "obs-a", "route": "/v1/pairs/{pair_id}", "method": "GET"},
    )
    assert count and count >= 2


async def test_unmatched_paths_and_errors_have_bounded_labels(client: httpx.AsyncClient) -> None:
    before_404 = requests_total("obs-a", UNMATCHED_ROUTE, "GET", "404")
    before_500 = requests_total("obs-a", "/v1/boom", "GET", "500")
    await client.get("/wp-admin/../etc/passwd")
    await client.get("/random/123")
    assert (await client.get("/v1/boom")).status_code == 500
    assert requests_total("obs-a", UNMATCHED_ROUTE, "GET", "404") == before_404 + 2
    assert requests_total("obs-a", "/v1/boom", "GET", "500") == before_500 + 1


async def test_metrics_endpoint_exposes_binome_metrics(client: httpx.AsyncClient) -> None:
    EVENTS_APPENDED.labels(service="obs-a", type="binome.enrollment.WaveOpened.v1").inc()
    await client.get("/v1/pairs/p-1")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert 'binome_http_requests_total{method="GET",route="/v1/pairs/{pair_id}",service="obs-a",status="200"}' in text
    assert "binome_http_request_duration_seconds_bucket" in text
    assert 'binome_events_appended_total{service="obs-a",type="binome.enrollment.WaveOpened.v1"}' in text
    for name in (
        "binome_outbox_lag_events",
        "binome_outbox_lag_seconds",
        "binome_events_published_total",
        "binome_consumer_lag",
        "binome_events_applied_total",
        "binome_projection_lag_seconds",
        "binome_dead_letters_total",
    ):
        assert f"# TYPE {name}" in text


async def test_metrics_supports_openmetrics(client: httpx.AsyncClient) -> None:
    r = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


async def test_each_service_shows_only_its_own_series(client: httpx.AsyncClient) -> None:
    # Two services in one process share the registry; each /metrics keeps to itself.
    async with await client_for(build_app("obs-b")) as other:
        await other.get("/v1/pairs/x")
        await client.get("/v1/pairs/y")
        text_a = (await client.get("/metrics")).text
        text_b = (await other.get("/metrics")).text
    assert 'service="obs-a"' in text_a and 'service="obs-b"' not in text_a
    assert 'service="obs-b"' in text_b and 'service="obs-a"' not in text_b


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_ok_when_every_check_passes() -> None:
    async def ok() -> bool:
        return True

    async with await client_for(build_app("obs-c", {"database": ok, "broker": ok})) as c:
        r = await c.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_readyz_503_names_the_failed_checks() -> None:
    async def ok() -> bool:
        return True

    async def down() -> bool:
        return False

    async def raises() -> bool:
        raise ConnectionError("secret dsn postgres://u:pw@db")

    async with await client_for(build_app("obs-d", {"database": ok, "broker": down, "cache": raises})) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["failed"] == ["broker", "cache"]
    assert body["checks"] == {"database": "ok", "broker": "failed", "cache": "failed"}
    assert "pw@db" not in r.text


async def test_readyz_times_out_a_hanging_check() -> None:
    import asyncio

    from libs.observability.health import install_ops_routes

    async def hangs() -> bool:
        await asyncio.sleep(30)
        return True

    app = FastAPI()
    install_ops_routes(app, "obs-e", {"slow": hangs}, check_timeout_seconds=0.05)
    async with await client_for(app) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503 and r.json()["failed"] == ["slow"]


async def test_mounted_service_apps_are_counted_once_under_their_own_service() -> None:
    # The embedded platform mounts every service app in one root app; both
    # have the metrics middleware, and the request must be counted once, by
    # the service that handled it, with the service's route template.
    verifier = TokenVerifier(issuer="idp", audience="binome", public_key=PUBLIC_PEM)
    root = create_service_app(
        "obs-root", title="root", version="1", verifier=verifier, metrics_scope="process"
    )
    root.mount("/svc", build_app("obs-svc"))
    async with await client_for(root) as c:
        assert (await c.get("/svc/v1/pairs/p-9")).json() == {"id": "p-9"}
        assert requests_total("obs-svc", "/v1/pairs/{pair_id}", "GET", "200") == 1
        assert REGISTRY.get_sample_value(
            "binome_http_requests_total",
            {"service": "obs-root", "route": "/svc/v1/pairs/{pair_id}", "method": "GET", "status": "200"},
        ) is None
        # The root's /metrics covers the whole process; the service's only itself.
        await c.get("/healthz")  # a root request, recorded under obs-root
        root_text = (await c.get("/metrics")).text
        svc_text = (await c.get("/svc/metrics")).text
    assert 'service="obs-svc"' in root_text and 'service="obs-root"' in root_text
    assert 'service="obs-root"' not in svc_text
