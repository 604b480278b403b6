"""RFC 9457 problem details (``application/problem+json``) for every error.

Every error a Binome API returns has the same shape::

    {"type": "about:blank", "title": "Not Found", "status": 404,
     "detail": "...", "instance": "/v1/pairs/42", ...extension members}

- ``type`` is ``about:blank`` when the HTTP status says it all, else a
  ``urn:binome:problem:<slug>`` URI a client may switch on.
- Validation errors (422) carry ``errors: [{"field": "body.profile.country",
  "message": ..., "type": ...}]``, one entry per wrong field. The rejected
  input is never echoed back: it may be personal data.
- Services map their domain exceptions with ``map_exception`` (e.g. the event
  store's ``ConcurrencyError`` -> 409) instead of catching them in every route.
- A database out of reach (connection refused or lost, server shutting down
  or starting, too many connections, a connect or pool timeout) is a 503
  with ``Retry-After``, never a 500: the request may succeed in a moment and
  nothing is wrong with it. The same holds when the failure comes from a
  middleware (idempotency, audit) rather than a route; see ``is_outage``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import asyncpg
import time

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.api.responses import OrjsonResponse
from libs.api.routes import allowed_methods
from libs.auth.principal import Forbidden
from libs.gdpr.vault import KeyShredded
from libs.observability.metrics import HTTP_DEPENDENCY_UNAVAILABLE, route_template

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
VALIDATION_ERROR = "urn:binome:problem:validation-error"
UNREADABLE_BODY = "The body cannot be read as the media type it declares."
UNAVAILABLE = "urn:binome:problem:dependency-unavailable"
#: Seconds a client waits before retrying during an outage: the embedded
#: PostgreSQL is restarted within about that.
OUTAGE_RETRY_AFTER_S = 2
FORBIDDEN = "urn:binome:problem:forbidden"


def _title(status: int) -> str:
    if status == 422:
        return "Unprocessable Content"  # RFC 9110's name; Python < 3.13 still says "Unprocessable Entity"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem+json response.

    ``extra`` keyword arguments become extension members of the document.
    ``headers`` are added to the response (e.g. ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        type: str = "about:blank",  # noqa: A002 - the RFC's member name
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title or _title(status))
        self.status = status
        self.title = title or _title(status)
        self.detail = detail
        self.type = type
        self.headers = dict(headers or {})
        self.extra = extra

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        if instance is not None:
            body["instance"] = instance
        # Extensions never overwrite the standard members.
        body.update({k: v for k, v in self.extra.items() if k not in body})
        return body


def invalid(errors: list[dict[str, Any]], detail: str = "The request is invalid; see 'errors'.") -> Problem:
    """A 422 validation problem; each error names its field (``body.x``,
    ``query.x``, ``header.X``), as FastAPI's own validation errors do."""
    return Problem(422, detail=detail, type=VALIDATION_ERROR, errors=errors)


IMPORT_REJECTED = "urn:binome:problem:import-rejected"


def import_rejected(detail: str, file_sha256: str, rows: int, errors: list[Any]) -> Problem:
    """A file import refused as a whole (all or nothing): each bad row's
    ``line``, ``field`` and ``message`` (``libs.tabular.RowError``)."""
    return Problem(
        422,
        title="Import rejected",
        detail=detail,
        type=IMPORT_REJECTED,
        file_sha256=file_sha256,
        rows=rows,
        errors=[{"line": e.line, "field": e.field, "message": e.message} for e in errors],
    )


class ProblemDetails(BaseModel):
    """OpenAPI schema of a problem document (for route ``responses=``)."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem+json errors in OpenAPI."""
    return {
        s: {"model": ProblemDetails, "content": {PROBLEM_JSON: {}}, "description": _title(s)}
        for s in statuses
    }


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return OrjsonResponse(
        problem.to_dict(instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "profile", "country")`` -> ``"body.profile.country"``."""
    return ".".join(str(part) for part in loc)


# --- handlers ---------------------------------------------------------------


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": field_path(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return problem_response(invalid(errors), request)


async def _handle_http(request: Request, exc: Exception) -> Response:
    # Starlette's HTTPException covers FastAPI's and the router's own 404/405.
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (204, 304):  # these statuses cannot carry a body
        return Response(status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 400:
        # Only the framework raises a bare 400: a body it could not even parse
        # (not UTF-8, broken JSON or form). The same 422 as any invalid body,
        # the one every operation with a body documents.
        return problem_response(invalid([{"field": "body", "message": UNREADABLE_BODY, "type": "body_unreadable"}]), request)
    detail = exc.detail if isinstance(exc.detail, str) else None
    extra = {} if isinstance(exc.detail, str) or exc.detail is None else {"context": exc.detail}
    # Starlette fills detail with the status phrase when none is given; do
    # not repeat the title as the detail.
    if detail == _title(exc.status_code):
        detail = None
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app.routes, request.scope))}
    problem = Problem(exc.status_code, detail=detail, headers=headers, **extra)
    return problem_response(problem, request)




async def _handle_forbidden(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(Problem(403, detail=str(exc) or None, type=FORBIDDEN), request)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Reached by exceptions from middlewares too (they run outside the
    # routes' exception handlers): an outage there is still a 503.
    if is_outage(exc):
        return await _handle_outage(request, exc)
    # Never leak internals (stack, SQL, personal data) to the caller. The
    # server error middleware re-raises after this, so the server logs it too.
    # The route template, not the path: a path may carry what the caller sent.
    log.error("api.unhandled_exception", route=route_template(request.scope), exc_info=exc)
    return problem_response(Problem(500), request)


#: Exceptions that mean "the database (or another dependency) is out of
#: reach", not "this request is wrong". OSError covers refused and reset
#: connections, a missing socket, and TimeoutError (connect and pool
#: acquire timeouts); class 08 is a lost connection; class 57 a server
#: shutting down, starting up or cancelling on a timeout; class 53 too many
#: connections or no resources left.
_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it, or a member of its group) is a dependency outage."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        # asyncpg says "connection is closed" for a connection the server dropped.
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


_last_outage_log = 0.0


async def _handle_outage(request: Request, exc: Exception) -> JSONResponse:
    if not is_outage(exc):  # e.g. an InterfaceError that is a bug, not an outage
        return await _handle_unexpected(request, exc)
    HTTP_DEPENDENCY_UNAVAILABLE.labels(getattr(request.app.state, "service", "unknown")).inc()
    global _last_outage_log
    if time.monotonic() - _last_outage_log > 5:  # one line per few seconds of outage, not per request
        _last_outage_log = time.monotonic()
        log.warning("api.dependency_unavailable", path=request.url.path, error=type(exc).__name__)
    problem = Problem(
        503,
        detail="The database is out of reach for the moment; retry shortly (with the same Idempotency-Key for a POST).",
        type=UNAVAILABLE,
        headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)},
    )
    return problem_response(problem, request)


class AnsweredOutages:
    """Pure ASGI: an outage that was already answered with a 503 stops here.

    Starlette's server error middleware re-raises every exception after its
    handler answered, for the server to log; for an outage that is one
    traceback per request while the database is away, and the 503 said it
    all. Any other exception goes on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answered = False

        async def noting_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except Exception as exc:
            if not (answered and is_outage(exc)):
                raise


#: PostgreSQL refuses the NUL character (``\u0000``) in text and JSONB; the
#: statement fails and its transaction stores nothing. It is bad input, not a 500.
UNSTORABLE_TEXT = (asyncpg.exceptions.UntranslatableCharacterError, asyncpg.exceptions.CharacterNotInRepertoireError)


async def _handle_unstorable_text(request: Request, exc: Exception) -> JSONResponse:
    problem = invalid(
        # A rule of the platform's storage that no schema of a string states: type rule.
        [{"field": "request", "message": "Text may not contain the NUL character.", "type": "rule"}],
        detail="Text may not contain the NUL character (\\u0000).",
    )
    return problem_response(problem, request)


async def _handle_shredded(request: Request, exc: Exception) -> JSONResponse:
    # A command that would seal new personal data under an erased key (an
    # erased person, notes past their retention): the object's state forbids it.
    problem = Problem(409, detail="The personal data of this object was erased; nothing personal can be added.",
                      type="urn:binome:problem:erased")
    return problem_response(problem, request)


def map_exception(
    app: FastAPI,
    exc_type: type[Exception],
    status: int | Callable[[Exception], Problem],
    *,
    title: str | None = None,
    type: str = "about:blank",  # noqa: A002
) -> None:
    """Answer ``exc_type`` (and its subclasses) with a problem document.

    ``status`` is either an HTTP status (the exception's message becomes the
    ``detail``, so domain messages must be fit for users) or a function
    building the ``Problem`` when more control is needed.

        map_exception(app, ConcurrencyError, 409, type="urn:binome:problem:conflict")
    """
    if callable(status):
        build = status
    else:
        code = status

        def build(exc: Exception) -> Problem:
            return Problem(code, title=title, detail=str(exc) or None, type=type)

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(build(exc), request)

    app.add_exception_handler(exc_type, handler)


def install_problem_handlers(
    app: FastAPI,
    mappings: Mapping[type[Exception], int | Callable[[Exception], Problem]] | None = None,
) -> None:
    """Make every error of ``app`` a problem+json response.

    ``mappings`` is a shortcut for several ``map_exception`` calls.
    """
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(Forbidden, _handle_forbidden)
    app.add_exception_handler(Exception, _handle_unexpected)
    for exc_type in (*_OUTAGES, asyncpg.InterfaceError):
        app.add_exception_handler(exc_type, _handle_outage)
    for exc_type in UNSTORABLE_TEXT:
        app.add_exception_handler(exc_type, _handle_unstorable_text)
    app.add_exception_handler(KeyShredded, _handle_shredded)
    for exc_type, status in (mappings or {}).items():
        map_exception(app, exc_type, status)
