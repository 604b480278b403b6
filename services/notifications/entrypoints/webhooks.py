"""The webhook routes (``/v1/webhooks``): an organisation's HR platforms
register endpoints and receive its events, signed (Standard Webhooks).

Roles: an HR admin manages every endpoint of its organisation; a regional
committee manages endpoints limited to its own countries
(service_layer/webhook_endpoints.py says exactly what each sees). Every
change records who made it (``created_by``/``updated_by``, and the audit
trail of every /v1 request).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from libs.api.commands import rule_broken
from libs.api.idempotency import HEADER, KEY_REUSED, IdempotencyKey, idempotency_key
from libs.api.pagination import Page, PageParams, cursor_scope, page_params
from libs.api.patch import sent
from libs.api.problems import Problem, map_exception, problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE, Principal
from libs.domain.errors import InvalidInput, InvalidState, NotFound
from libs.runtime.service import ServiceContext
from services.notifications.adapters.webhook_http import WebhookHttp
from services.notifications.domain.webhooks import signed_headers
from services.notifications.entrypoints.webhook_schemas import (
    DeliveryOut,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointWithSecret,
    PingOut,
    Redelivered,
    Status,
)
from services.notifications.service_layer.webhook_delivery import ping_body
from services.notifications.service_layer.webhook_endpoints import WebhookEndpoints

READ_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422)
MANAGERS = requires(HR_ADMIN, REGIONAL_COMMITTEE)
TAGS: list[str] = ["webhooks"]

router = APIRouter(prefix="/v1", route_class=ApiRoute)


def endpoints(request: Request) -> WebhookEndpoints:
    service = request.app.state.webhooks
    if service is None:  # an app built without the GDPR vault (OpenAPI only)
        raise Problem(503, detail="webhooks need the key vault", headers={"Retry-After": "60"})
    return service


def with_secret(row: Any, secret: str | None) -> dict[str, Any]:
    return {**dict(row), "secret": secret}


@router.post("/webhooks", status_code=201, response_model=EndpointWithSecret, responses=WRITE_ERRORS, tags=TAGS)
async def register_endpoint(
    body: EndpointIn,
    request: Request,
    who: Principal = Depends(MANAGERS),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> dict[str, Any]:
    """Register an endpoint; the answer holds its signing secret, shown this once."""
    row, secret = await endpoints(request).register(
        who, url=body.url, event_types=body.event_types, countries=body.countries, description=body.description,
        idempotency_key=key.key if key is not None else None,
    )
    if secret is None and (row["url"], row["event_types"], row["description"]) != (
        body.url, body.event_types, body.description
    ):
        raise Problem(
            422, title="Idempotency key reused", type=KEY_REUSED,
            detail=f"This {HEADER} registered another endpoint; use a new key for a new request.",
        )
    return with_secret(row, secret)


@router.get("/webhooks", response_model=Page[EndpointOut], responses=READ_ERRORS, tags=TAGS)
async def list_endpoints(
    request: Request, page: PageParams = Depends(page_params), who: Principal = Depends(MANAGERS)
) -> Page[Any]:
    """The endpoints the caller manages, by id."""
    scope = cursor_scope(list="webhooks")
    rows = await endpoints(request).list(who, page.after(scope), page.limit)
    return Page.of(rows, page.limit, scope, key=lambda r: str(r["endpoint_id"]), item=dict)


@router.get("/webhooks/{endpoint_id}", response_model=EndpointOut, responses=READ_ERRORS, tags=TAGS)
async def get_endpoint(endpoint_id: UUID, request: Request, who: Principal = Depends(MANAGERS)) -> dict[str, Any]:
    """One endpoint, with why it was disabled if it was."""
    return dict(await endpoints(request).get(who, endpoint_id))


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointOut, responses=WRITE_ERRORS, tags=TAGS)
async def change_endpoint(
    endpoint_id: UUID, body: EndpointPatch, request: Request, who: Principal = Depends(MANAGERS)
) -> dict[str, Any]:
    """Change its URL, event types, description, or disable / enable it."""
    return dict(await endpoints(request).update(who, endpoint_id, sent(body)))


@router.delete("/webhooks/{endpoint_id}", status_code=204, response_class=Response, responses=WRITE_ERRORS, tags=TAGS)
async def delete_endpoint(endpoint_id: UUID, request: Request, who: Principal = Depends(MANAGERS)) -> Response:
    """Delete it with its deliveries; its secrets can never be opened again."""
    await endpoints(request).delete(who, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{endpoint_id}:rotate-secret", response_model=EndpointWithSecret, responses=WRITE_ERRORS, tags=TAGS
)
async def rotate_secret(endpoint_id: UUID, request: Request, who: Principal = Depends(MANAGERS)) -> dict[str, Any]:
    """A new secret, shown this once; the previous one signs too until
    ``previous_secret_until`` (each delivery carries both signatures)."""
    row, secret = await endpoints(request).rotate(who, endpoint_id)
    return with_secret(row, secret)


@router.post("/webhooks/{endpoint_id}:ping", response_model=PingOut, responses=WRITE_ERRORS, tags=TAGS)
async def ping_endpoint(endpoint_id: UUID, request: Request, who: Principal = Depends(MANAGERS)) -> dict[str, Any]:
    """Send a signed ``binome.notifications.WebhookPing.v1`` now and say how
    the endpoint answered (not recorded, not retried)."""
    service = endpoints(request)
    row = await service.get(who, endpoint_id)
    event = ping_body(endpoint_id, who.organisation, service.clock())
    body = orjson.dumps(event).decode()
    headers = signed_headers(await service.signing_secrets(endpoint_id), event["id"], datetime.now(UTC), body)
    http = WebhookHttp(dev_mode=service.dev_mode)
    try:
        answer = await http.post(row["url"], body.encode(), headers)
    finally:
        await http.aclose()
    return {"ok": answer.ok, "status_code": answer.status_code, "error": answer.error}


@router.get(
    "/webhooks/{endpoint_id}/deliveries", response_model=Page[DeliveryOut], responses=READ_ERRORS, tags=TAGS
)
async def list_deliveries(
    endpoint_id: UUID,
    request: Request,
    status: Status | None = Query(None, description="Only deliveries in this state."),
    page: PageParams = Depends(page_params),
    who: Principal = Depends(MANAGERS),
) -> Page[Any]:
    """The endpoint's deliveries, by id: status, attempts, last answer."""
    scope = cursor_scope(endpoint=str(endpoint_id), status=status)
    rows = await endpoints(request).deliveries(who, endpoint_id, status, page.after(scope), page.limit)
    return Page.of(rows, page.limit, scope, key=lambda r: str(r["delivery_id"]), item=dict)


@router.post(
    "/webhooks/{endpoint_id}/deliveries:redeliver", response_model=Redelivered, responses=WRITE_ERRORS, tags=TAGS
)
async def redeliver_all(endpoint_id: UUID, request: Request, who: Principal = Depends(MANAGERS)) -> dict[str, int]:
    """Every failed delivery of the endpoint is due again, now."""
    return {"queued": await endpoints(request).redeliver(who, endpoint_id, None)}


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}:redeliver",
    response_model=Redelivered,
    responses=WRITE_ERRORS,
    tags=TAGS,
)
async def redeliver_one(
    endpoint_id: UUID, delivery_id: UUID, request: Request, who: Principal = Depends(MANAGERS)
) -> dict[str, int]:
    """One failed delivery is due again, now (409 if it did not fail)."""
    return {"queued": await endpoints(request).redeliver(who, endpoint_id, delivery_id)}


def install_webhooks(app: FastAPI, ctx: ServiceContext) -> None:
    """The routes, their service and how its refusals answer."""
    app.state.webhooks = (
        WebhookEndpoints(ctx.pool, ctx.store.schema, ctx.vault, ctx.clock, dev_mode=ctx.settings.in_dev_mode)
        if ctx.vault is not None
        else None
    )
    map_exception(app, NotFound, 404)
    map_exception(app, InvalidInput, rule_broken)
    map_exception(app, InvalidState, lambda exc: Problem(409, detail=str(exc)))
    app.include_router(router)
