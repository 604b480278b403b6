"""``GET /v1/audit``: the service's audit trail, for the global HR admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from libs.api.dates import Instant
from libs.api.pagination import Page, PageParams, cursor_scope, page_params
from libs.api.problems import problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.audit.middleware import AuditMiddleware
from libs.audit.trail import AuditTrail
from libs.auth.principal import HR_ADMIN, Principal

router = APIRouter(tags=["audit"], route_class=ApiRoute)


class AuditEntry(BaseModel):
    id: int
    at: datetime
    subject: str | None
    client_id: str | None
    organisation: str | None
    roles: list[str]
    country: str | None
    action: str
    object: dict[str, str]
    decision: str
    status: int
    correlation_id: str | None


@router.get("/v1/audit", response_model=Page[AuditEntry], responses=problem_responses(401, 403, 422))
async def audit_trail(
    request: Request,
    subject: str | None = Query(None, max_length=200, description="Only what this subject did or tried."),
    decision: Literal["allowed", "denied", "invalid", "failed"] | None = Query(None),
    object_id: str | None = Query(None, max_length=200, description="Only entries naming this id."),
    since: Instant | None = Query(None, description="Only entries at or after this instant."),
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(HR_ADMIN)),
) -> Page[AuditEntry]:
    """Who did or tried what in this service, newest first (the caller's organisation only)."""
    trail: AuditTrail = request.app.state.audit_trail
    scope = cursor_scope(subject=subject, decision=decision, object_id=object_id, since=since)
    rows = await trail.query(
        who.organisation,
        subject=subject,
        decision=decision,
        object_id=object_id,
        since=since,
        after_id=page.after(scope),
        limit=page.limit + 1,
    )
    return Page.of(rows, page.limit, scope, key=lambda r: r["id"], item=lambda r: AuditEntry(**r))


def install_audit(app: Any, trail: AuditTrail) -> None:
    """Record every /v1 request of ``app`` and serve its trail at /v1/audit."""
    app.state.audit_trail = trail
    app.add_middleware(AuditMiddleware, trail=trail)
    app.include_router(router)
