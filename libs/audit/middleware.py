"""Records every ``/v1`` request in the service's audit trail.

Pure ASGI and after the response is sent, so the caller never waits for it.
Who: the principal that ``libs.api.security`` put on the request state (none
when the token was missing or bad: that denial is recorded too). What: the
route template and its path parameters (ids, never bodies). The country of
the object is recorded when the handler set ``request.state.audit_country``.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from libs.asgi import ResponseStatus
from libs.audit.trail import AuditRecord, AuditTrail
from libs.observability.correlation import current_correlation_id
from libs.observability.metrics import route_template

log = logging.getLogger(__name__)

AUDITED_PREFIX = "/v1"


class AuditMiddleware:
    def __init__(self, app: ASGIApp, trail: AuditTrail) -> None:
        self.app = app
        self.trail = trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(AUDITED_PREFIX):
            await self.app(scope, receive, send)
            return
        response = ResponseStatus(send)
        try:
            await self.app(scope, receive, response.send)
        finally:
            await self._record(scope, response.status or 500)

    async def _record(self, scope: Scope, status: int) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        record = AuditRecord(
            action=f"{scope['method']} {route_template(scope)}",
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
