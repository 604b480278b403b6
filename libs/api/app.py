"""The one way to build a Binome service's FastAPI application.

    app = create_service_app("enrollment", title="Enrollment", version="1",
                             verifier=TokenVerifier.from_settings(),
                             readiness_checks={"database": database_check(pool)})
    app.include_router(waves_router, prefix="/v1")

Every service then has the same error format, metrics, ops routes, auth and
correlation ids (``libs.observability.correlation``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from fastapi import FastAPI
from starlette.types import ASGIApp

from libs.api.docs import install_docs
from libs.api.fastapi_params import keep_sequence_answers
from libs.api.headers import SecurityHeaders
from libs.api.problems import AnsweredOutages, Problem, install_problem_handlers
from libs.api.route_index import index_routes
from libs.api.security import install_token_first
from libs.auth.tokens import TokenVerifier
from libs.observability.correlation import CorrelationMiddleware
from libs.observability.health import ReadinessCheck, install_ops_routes
from libs.observability.metrics import MetricsMiddleware

#: FastAPI's OpenTelemetry bridge, off (see create_service_app).
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


class _ServiceApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # The correlation id wraps even Starlette's ServerErrorMiddleware
        # (always outermost otherwise), so the log of an unhandled error and
        # its 500 response carry the id of the request that caused them.
        # An outage already answered 503 is not re-raised to the server.
        return CorrelationMiddleware(AnsweredOutages(super().build_middleware_stack()))


def create_service_app(
    service: str,
    *,
    title: str,
    version: str,
    verifier: TokenVerifier,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Any = None,
    exception_mappings: Mapping[type[Exception], int | Callable[[Exception], Problem]]
    | None = None,
    metrics_scope: Literal["service", "process"] = "service",
) -> FastAPI:
    """Build a service app; add the service's ``/v1`` routers to the result.

    ``exception_mappings`` maps domain exceptions to statuses (see
    ``libs.api.problems.map_exception``). ``metrics_scope="process"`` is for
    an app that mounts other service apps and should expose all of the
    process's metrics at its /metrics.
    """
    keep_sequence_answers()  # each parameter's "is it a list?" asked once (libs/api/fastapi_params.py)
    # FastAPI's own docs pages load their assets from a CDN: ours do not.
    # FastAPI's OpenTelemetry bridge is off: Binome observes through its own
    # metrics, access lines and correlation ids, and the bridge would look
    # the three global OpenTelemetry providers up on every request of every
    # app (the platform's and the mounted service's), about 11 µs each.
    app = _ServiceApp(
        title=title, version=version, lifespan=lifespan, docs_url=None, redoc_url=None, telemetry=NO_TELEMETRY
    )
    install_docs(app)
    app.state.service = service
    index_routes(app)  # each request tries only the routes its path can match
    # Read by libs.api.security.current_principal on every request.
    app.state.token_verifier = verifier
    install_problem_handlers(app, exception_mappings)
    install_token_first(app)  # 401 before 400/422: the token is checked before the input
    # Added as user middleware: it runs inside Starlette's ServerErrorMiddleware
    # (so it sees unhandled exceptions and counts them as 500) and outside the
    # exception middleware (so it sees the status of every handled error).
    app.add_middleware(MetricsMiddleware, service=service)
    app.add_middleware(SecurityHeaders)  # no-store and nosniff on every /v1 response
    install_ops_routes(app, service, readiness_checks, metrics_scope=metrics_scope)
    return app
