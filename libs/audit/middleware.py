"""Records every ``/v1`` request in the service's audit trail.

Pure ASGI and after the response is sent, so the caller never waits for it.
Which requests: those whose path *relative to this app* starts with ``/v1``
(or ``/v2``: the SCIM 2.0 routes of the directory, ``/scim/v2``).
Under ``binome up`` a service is mounted at ``/<service>``: Starlette keeps
the full path in ``scope["path"]`` and the mount prefix in
``scope["root_path"]``, so testing the raw path would miss every request
(issue 14); the relative path is what the app's own router matches.

Who: the principal that ``libs.api.security`` put on the request state (none
when the token was missing or bad: that denial is recorded too, but once per
source address per minute, so a client hammering with a bad token cannot
flood the trail). What: the route template relative to the app and its path
parameters (ids, never bodies). The country of the object is recorded when
the handler set ``request.state.audit_country``.
"""

from __future__ import annotations

import logging
import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from libs.asgi import ResponseStatus, app_path, source_of
from libs.audit.trail import AuditRecord, AuditTrail
from libs.observability.correlation import current_correlation_id
from libs.observability.metrics import route_template

log = logging.getLogger(__name__)

AUDITED_PREFIXES = ("/v1/", "/v2/")


class OncePerSource:
    """True for the first event of a source, then not again for ``window_s``.

    Monotonic time, never the dev clock. At most ``max_sources`` entries are
    kept: past that, the expired ones are dropped (and if none had expired,
    all of them: recording a few extra denials beats unbounded memory).
    """

    def __init__(self, window_s: float = 60.0, max_sources: int = 10_000) -> None:
        self.window_s, self.max_sources = window_s, max_sources
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def first(self, source: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(source)
            if last is not None and now - last < self.window_s:
                return False
            if len(self._last) >= self.max_sources:
                self._last = {s: t for s, t in self._last.items() if now - t < self.window_s}
                if len(self._last) >= self.max_sources:
                    self._last.clear()
            self._last[source] = now
            return True


class AuditMiddleware:
    def __init__(self, app: ASGIApp, trail: AuditTrail, anonymous: OncePerSource | None = None) -> None:
        self.app = app
        self.trail = trail
        self.anonymous = anonymous or OncePerSource()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (app_path(scope) + "/").startswith(AUDITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        response = ResponseStatus(send)
        try:
            await self.app(scope, receive, response.send)
        finally:
            await self._record(scope, root_path, response.status or 500)

    async def _record(self, scope: Scope, root_path: str, status: int) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        if principal is None and not self.anonymous.first(source_of(scope)):
            return  # an anonymous source already recorded within the window
        record = AuditRecord(
            action=f"{scope['method']} {route_template(scope, root_path)}",
            status=status,
            object={k: str(v) for k, v in (scope.get("path_params") or {}).items()},
            subject=getattr(principal, "subject", None),
            client_id=getattr(principal, "client_id", None),
            organisation=getattr(principal, "organisation", None),
            roles=tuple(sorted(getattr(principal, "roles", ()))),
            country=state.get("audit_country"),
            correlation_id=current_correlation_id(),
        )
        try:
            await self.trail.record(record)
        except Exception:
            # The response is gone already; never lose the fact silently.
            log.exception("audit record not written: %s %s", record.action, record.decision)
