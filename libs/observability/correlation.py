"""The correlation id: which request or event caused the work being done now.

It lives in a context variable, so every log line written while handling a
request or an event carries it (``libs.observability.logging`` adds it) and
code that appends events can copy it into their ``correlationid``.

- HTTP: ``CorrelationMiddleware`` takes it from the ``Correlation-Id``,
  ``X-Correlation-Id`` or ``X-Request-Id`` header (or makes a new one) and
  echoes it in the ``Correlation-Id`` response header.
- Events: the consumer runtime wraps each event's handling in
  ``with correlation(envelope.correlationid):``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RESPONSE_HEADER = "Correlation-Id"
#: Request headers read, first match wins (lower case, as ASGI gives them).
REQUEST_HEADERS = (b"correlation-id", b"x-correlation-id", b"x-request-id")

# A client chooses this value and it is written into every log line: accept
# only a short token, never spaces, quotes or newlines (log injection).
_VALID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_SCOPE_KEY = "binome.correlation_id"

_current: ContextVar[str | None] = ContextVar("binome_correlation_id", default=None)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def current_correlation_id() -> str | None:
    """The id of the request or event being handled, if any."""
    return _current.get()


@contextmanager
def correlation(correlation_id: str | None) -> Iterator[str]:
    """Handle one request or event under ``correlation_id`` (a new one if None)."""
    value = correlation_id or new_correlation_id()
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


@contextmanager
def correlations() -> Iterator[Callable[[str], object]]:
    """Handle a batch's events one after another, each under its id: call
    ``use(id)`` before each. One context for the batch instead of one
    ``correlation`` block per event (a replay files thousands a batch)."""
    token = _current.set(None)
    try:
        yield _current.set
    finally:
        _current.reset(token)


def _from_headers(scope: Scope) -> str | None:
    headers = dict(scope.get("headers") or ())
    for name in REQUEST_HEADERS:
        raw = headers.get(name)
        if raw is not None:
            value = raw.decode("latin-1").strip()
            return value if _VALID.fullmatch(value) else None
    return None


class CorrelationMiddleware:
    """Pure ASGI middleware: one correlation id per HTTP request.

    When service apps are mounted in a parent app that has this middleware
    too (the embedded platform), the outermost one decides the id; the inner
    ones pass the request through, so the id and the header exist once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _SCOPE_KEY in scope:
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((RESPONSE_HEADER.encode(), scope[_SCOPE_KEY].encode()))
                message = {**message, "headers": headers}
            await send(message)

        with correlation(_from_headers(scope)) as correlation_id:
            scope[_SCOPE_KEY] = correlation_id
            await self.app(scope, receive, send_with_header)
