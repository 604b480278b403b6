"""Prometheus metrics shared by every Binome service.

All metrics are defined once, here, on prometheus-client's default registry.
Several services may run in one process (the embedded stack), so every metric
has a ``service`` label instead of a per-service registry; ``/metrics`` of a
service shows only its own series (see ``libs.observability.health``).

Use them directly from the code that does the work, e.g.::

    EVENTS_APPENDED.labels(service="enrollment", type=event_type).inc()
    OUTBOX_LAG_EVENTS.labels(service="enrollment").set(pending)

Label values must come from small, fixed sets (event types, topics, route
templates), never from ids, or the number of series explodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.asgi import ResponseStatus

#: ``binome up --workers N`` (libs/runtime/workers.py) runs prometheus-client in
#: multiprocess mode: each process writes its samples to files that /metrics
#: merges. Counters and histograms add up across processes; each gauge here is
#: set by the one process that knows the value (the background process runs the
#: relays, consumers and read models), so the latest value set is the value.
_SET_BY_ONE_PROCESS = "mostrecent"

# --- HTTP ---------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "binome_http_requests_total",
    "HTTP requests handled, by route template and status code.",
    ["service", "route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "binome_http_request_duration_seconds",
    "Time to handle an HTTP request, by route template.",
    ["service", "route", "method"],
)
HTTP_REQUESTS_SHED = Counter(
    "binome_http_requests_shed_total",
    "Requests answered 503 at once because the service already ran its limit of requests (load shedding).",
    ["service"],
)
HTTP_REQUESTS_CANCELLED = Counter(
    "binome_http_requests_cancelled_total",
    "Requests whose handler was cancelled because the client disconnected before the response.",
    ["service"],
)
HTTP_DEPENDENCY_UNAVAILABLE = Counter(
    "binome_http_dependency_unavailable_total",
    "Requests answered 503 because a dependency (the database) was out of reach.",
    ["service"],
)
HELD_READS = Counter(
    "binome_held_reads_total",
    "Reads the HTTP workers of binome up --workers N may hold (a page of participants, a pair, a rollout dashboard; "
    "libs/api/held_reads.py), by outcome: held (answered from the worker's memory, nothing having changed since "
    "it was read) or read (from the database).",
    ["outcome"],
)

# --- embedded infrastructure (binome up) ----------------------------------
EMBEDDED_RESTARTS = Counter(
    "binome_embedded_restarts_total",
    "Attempts to restart a child of binome up that died (component: broker, database, or http worker).",
    ["component"],
)

# --- write side ---------------------------------------------------------
EVENTS_APPENDED = Counter(
    "binome_events_appended_total",
    "Events appended to the service's event store.",
    ["service", "type"],
)
OUTBOX_LAG_EVENTS = Gauge(
    "binome_outbox_lag_events",
    "Outbox rows committed but not yet published.",
    ["service"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
OUTBOX_LAG_SECONDS = Gauge(
    "binome_outbox_lag_seconds",
    "Age of the oldest unpublished outbox row (0 when the outbox is empty).",
    ["service"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
EVENTS_REPUBLISHED = Counter(
    "binome_events_republished_total",
    "Events queued again for a broker that started empty (only what some consumer had not applied).",
    ["service"],
)
EVENTS_PUBLISHED = Counter(
    "binome_events_published_total",
    "Events published to Kafka by the outbox relay.",
    ["service", "topic"],
)

# --- read side ----------------------------------------------------------
CONSUMER_LAG = Gauge(
    "binome_consumer_lag",
    "Messages between a consumer's committed offset and the partition end.",
    ["service", "consumer", "topic", "partition"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
CONSUMER_PARTITIONS = Gauge(
    "binome_consumer_partitions_assigned",
    "Partitions the consumer group gave this process's consumer (instances of a service split them).",
    ["service", "consumer"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
CONSUMER_BACKLOG_EVENTS = Gauge(
    "binome_consumer_backlog_events",
    "Events of a source context's event store after the consumer's watermark (not yet known applied), counted in the store, not the broker.",
    ["service", "consumer", "source"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
CONSUMER_BACKLOG_SECONDS = Gauge(
    "binome_consumer_backlog_seconds",
    "Age of the oldest event of the source's event store that the consumer has not applied (0 when caught up).",
    ["service", "consumer", "source"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
EVENTS_APPLIED = Counter(
    "binome_events_applied_total",
    "Events applied to a read model (duplicates skipped are not counted).",
    ["service", "consumer"],
)
PROJECTION_LAG_SECONDS = Gauge(
    "binome_projection_lag_seconds",
    "Time between an event's 'time' (or its publishing, if 'time' is later: the dev clock) and its application to a read model.",
    ["service", "consumer"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
DEAD_LETTERS = Counter(
    "binome_dead_letters_total",
    "Events parked (dead-lettered in PostgreSQL and on the topic), by reason.",
    ["service", "consumer", "reason"],
)
CONSUMER_TRANSIENT_FAILURES = Counter(
    "binome_consumer_transient_failures_total",
    "Tries of a batch that failed transiently (database or broker fault); the batch is retried with backoff.",
    ["service", "consumer"],
)
EVENTS_SKIPPED = Counter(
    "binome_events_skipped_total",
    "Records a consumer skipped: duplicates it had applied, or types its registry does not know (a newer producer).",
    ["service", "consumer", "reason"],
)

# --- relay health -------------------------------------------------------
RELAY_PUBLISH_FAILURES = Counter(
    "binome_relay_publish_failures_total",
    "Outbox relay batches that failed to publish (broker down, database error); retried.",
    ["service"],
)

# --- matching -------------------------------------------------------------
MATCHING_RUN_DURATION = Histogram(
    "binome_matching_run_duration_seconds",
    "Time to compute one matching run (scoring and solving); outcome is ok or failed.",
    ["service", "outcome"],
    # A wave of ~30 pairs solves in well under a second; a whole programme of
    # ~1,500 participants may take a minute: buckets span both.
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)

# --- business gauges (set by the read models that know them) -------------
# Labelled by country only: programmes and waves are unbounded sets, countries
# are not (one group runs in a few dozen).
PAIRS_ACTIVE = Gauge(
    "binome_pairs_active",
    "Pairs currently active (formed, not dissolved nor ended), by country.",
    ["service", "country"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)
PAIRS_AT_RISK = Gauge(
    "binome_pairs_at_risk",
    "Active pairs the pair-health read model flags as at risk, by country.",
    ["service", "country"],

    multiprocess_mode=_SET_BY_ONE_PROCESS,
)

# Route label for requests that matched no route (404 scans, typos): one
# series for all of them instead of one per path an attacker can invent.
UNMATCHED_ROUTE = "<unmatched>"
#: The status nginx gave the case: the client closed the connection before the response.
CLIENT_CLOSED_REQUEST = 499
_RECORDED = "binome.metrics_recorded"  # scope key
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Ops routes are polled every few seconds by probes and Prometheus: their
#: access lines go to DEBUG so they do not drown the requests that matter.
_QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
access_log = logging.getLogger("binome.access")


def route_template(scope: Scope, root_path_before: str = "") -> str:
    """The matched route's template (``/v1/pairs/{pair_id}``), never the raw path."""
    # The router records the matched route in the scope ("route"); its
    # ``path`` is the template ("/v1/pairs/{pair_id}"), not the raw path.
    route = scope.get("route")
    # ``path_format``: the template without convertors (``{pair_id:object}``
    # is ``{pair_id}``, libs/api/routes.ApiRoute), as OpenAPI writes it.
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    # Inside a Mount, root_path grew by the mount prefix; keep it in the label.
    prefix = scope.get("root_path", "")[len(root_path_before) :]
    if isinstance(route, Mount):
        # A mounted non-router app (static files...): the prefix is all we know.
        return prefix + "/{path}"
    return prefix + path


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency per route template,
    and one access log line per request (``http.request``; it carries the
    request's correlation id, set by the outer CorrelationMiddleware, and the
    caller's token subject).

    Pure ASGI (not BaseHTTPMiddleware) so it adds no task or body buffering
    and sees the status of streaming responses too.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        #: (route, method, status) -> its latency and count series: looked up
        #: by label values once, not on every request. Bounded: route
        #: templates, methods and statuses are small sets.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        root_path_before = scope.get("root_path", "")
        response = ResponseStatus(send)
        start = time.perf_counter()
        failed = 500  # no response started: the app raised, which is a 500
        try:
            await self.app(scope, receive, response.send)
        except asyncio.CancelledError:
            failed = CLIENT_CLOSED_REQUEST  # cancelled: its client went away (libs/api/shedding.py)
            raise
        finally:
            # When service apps are mounted in a parent app that also has this
            # middleware (the embedded platform), the innermost one records the
            # request under its own service and route; the outer ones skip it,
            # so a request is never counted twice.
            if not scope.get(_RECORDED):
                scope[_RECORDED] = True
                self._record(scope, root_path_before, method, response.status or failed, start)

    def _record(self, scope: Scope, root_path_before: str, method: str, status: int, start: float) -> None:
        route = route_template(scope, root_path_before)
        duration = time.perf_counter() - start
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[route, method, status] = (
                HTTP_REQUEST_DURATION.labels(self.service, route, method),
                HTTP_REQUESTS.labels(self.service, route, method, str(status)),
            )
        series[0].observe(duration)
        series[1].inc()
        level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        # The record made and handled directly: Logger.log would also walk
        # the stack for the caller's file and line, which no line shows.
        record = access_log.makeRecord(
            access_log.name,
            level,
            __file__,
            0,
            "http.request",
            (),
            None,
            extra={
                "service": self.service,
                "route": route,
                "method": method,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(duration * 1000, 1),
                # Who: the verified token's subject (None: no valid token).
                "subject": getattr((scope.get("state") or {}).get("principal"), "subject", None),
            },
        )
        access_log.handle(record)
