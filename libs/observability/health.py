"""Ops endpoints every service exposes: /metrics, /healthz, /readyz.

They are unauthenticated (Prometheus and the orchestrator's probes carry no
token), live outside /v1 (they are not part of the versioned API) and are
left out of the OpenAPI document.

- /healthz: liveness. 200 as long as the process answers; it checks nothing
  else, so a database outage never makes the orchestrator kill healthy pods.
- /readyz: readiness. Runs every check concurrently with a timeout; 200 when
  all pass, else 503 naming the failed ones (reasons go to the log only:
  this endpoint is public). Checks given later (``add_readiness_checks``:
  the platform adds the broker's and a shared database check to every
  service it mounts) join those the app was built with.
- /metrics: the Prometheus exposition. By default restricted to this
  service's series (``metrics_scope="service"``); an app that fronts a whole
  process (the embedded platform, mounting every service) passes
  ``metrics_scope="process"`` to expose every series once, at one URL. Under
  ``binome up --workers N`` both merge the samples of every process of the
  platform (``process_metrics``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]


def database_check(pool: asyncpg.Pool) -> ReadinessCheck:
    """A readiness check that the pool still reaches its database."""

    async def database_ready() -> bool:
        return await pool.fetchval("SELECT true")

    return database_ready


def broker_check(bootstrap: str, timeout: float = 1.0) -> ReadinessCheck:
    """A readiness check that one of the Kafka bootstrap servers answers
    (``libs.messaging.kafka.broker_answers``: one small round trip)."""
    from libs.messaging.kafka import broker_answers

    servers = [server.strip().rpartition(":") for server in bootstrap.split(",") if server.strip()]

    async def broker_ready() -> bool:
        for host, _, port in servers:
            if await broker_answers(host.strip("[]"), int(port), timeout):
                return True
        return False

    return broker_ready


def cached(check: ReadinessCheck, seconds: float = 1.0) -> ReadinessCheck:
    """``check``'s answer, kept ``seconds``: the platform and each of its services
    are probed separately, and all of them share one answer per second."""
    last: list[tuple[float, bool]] = []

    async def cached_check() -> bool:
        now = time.monotonic()
        if last and now - last[0][0] < seconds:
            return last[0][1]
        try:
            result = (await check()) is True
        except Exception:
            result = False
        last[:] = [(time.monotonic(), result)]
        return result

    return cached_check


def add_readiness_checks(app: FastAPI, checks: Mapping[str, ReadinessCheck]) -> None:
    """Add (or replace) checks of an app built with ``install_ops_routes``."""
    app.state.readiness_checks.update(checks)


class _ServiceView(Collector):
    """The default registry, minus the series of other services.

    In the embedded stack several services share one process and one
    registry; without this filter each service's /metrics would also report
    its neighbours' series and Prometheus would store them twice. Series with
    no ``service`` label (process and Python runtime metrics) are kept.
    """

    def __init__(self, service: str, source: Collector = REGISTRY) -> None:
        self.service = service
        self.source = source

    def collect(self) -> Iterable[Metric]:
        for metric in self.source.collect():
            # Build a copy: a custom collector may hand out shared objects.
            view = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            view.samples = [
                s for s in metric.samples if s.labels.get("service", self.service) == self.service
            ]
            yield view


def process_metrics() -> Collector:
    """Every series of this process; of every process of the platform when
    prometheus-client runs in multiprocess mode (``binome up --workers N``
    sets ``PROMETHEUS_MULTIPROC_DIR``): merged from their files at each scrape."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


async def _run_check(name: str, check: ReadinessCheck, timeout: float) -> bool:
    try:
        return (await asyncio.wait_for(check(), timeout)) is True
    except Exception as exc:  # a probe must answer, whatever the check does
        log.warning("readiness.check_failed", check=name, error=repr(exc))
        return False


def install_ops_routes(
    app: FastAPI,
    service: str,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    *,
    check_timeout_seconds: float = 2.0,
    metrics_scope: Literal["service", "process"] = "service",
) -> None:
    checks = app.state.readiness_checks = dict(readiness_checks or {})
    every = process_metrics()
    view: Collector = _ServiceView(service, every) if metrics_scope == "service" else every

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        names = list(checks)
        results = await asyncio.gather(
            *(_run_check(n, checks[n], check_timeout_seconds) for n in names)
        )
        outcome = {n: ("ok" if ok else "failed") for n, ok in zip(names, results, strict=True)}
        failed = [n for n, ok in zip(names, results, strict=True) if not ok]
        body = {"status": "unavailable" if failed else "ready", "checks": outcome}
        if failed:
            body["failed"] = failed
        return JSONResponse(body, status_code=503 if failed else 200)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # Content negotiation as prometheus-client's own handlers do it:
        # OpenMetrics when the scraper asks for it, else the text format.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(view), media_type=content_type)
