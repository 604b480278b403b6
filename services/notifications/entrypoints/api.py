"""The notifications REST API (``/v1``): a participant's message preferences,
the delivery log, webhooks (entrypoints/webhooks.py) and committees'
contacts (entrypoints/committees.py).

Roles: a participant reads and sets its own preferences; the global HR
admin exports what the service keeps about a participant (GDPR); ``hr_admin`` reads
the delivery log of its organisation, ``regional_committee`` that of its
countries (another country named in ``?country=`` is a 404). The log holds
metadata only (kind, recipient id, times, status, the mail server's last
answer), never a body.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Query, Request

from libs.api.app import create_service_app
from libs.api.pagination import Page, PageParams, page_params
from libs.api.problems import problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, Forbidden, Principal
from libs.gdpr.export import export_router
from libs.observability.health import database_check
from libs.runtime.service import ServiceContext
from services.notifications.adapters.mail import mailer_from
from services.notifications.domain.kinds import Kind
from services.notifications.entrypoints.schemas import (
    MessageOut,
    MessagesSummary,
    MessageStatus,
    PreferencesIn,
    PreferencesOut,
)
from services.notifications.entrypoints.committees import install_committees
from services.notifications.service_layer.delivery_log import DeliveryLog
from services.notifications.service_layer.export import Export, NotificationsExport
from services.notifications.entrypoints.webhooks import install_webhooks

NAME = "notifications"
READ_ERRORS = problem_responses(401, 403, 404, 422)
LOG_READERS = (HR_ADMIN, REGIONAL_COMMITTEE)
Country = Query(None, pattern=r"^[A-Za-z]{2}$")

router = APIRouter(prefix="/v1", route_class=ApiRoute)


def participant_of(who: Principal) -> UUID:
    """The participant a participant token speaks for (its subject)."""
    try:
        return UUID(who.subject)
    except ValueError:
        raise Forbidden("this token names no participant") from None


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


# --------------------------------------------------------------------------- preferences


def delivery_log(request: Request) -> DeliveryLog:
    return request.app.state.delivery_log


@router.get("/preferences/me", response_model=PreferencesOut, responses=READ_ERRORS, tags=["preferences"])
async def my_preferences(request: Request, who: Principal = Depends(requires(PARTICIPANT))) -> dict[str, Any]:
    """The calling participant's message preferences (defaults until they change them)."""
    return await delivery_log(request).preferences(pool(request), who, participant_of(who))


@router.put("/preferences/me", response_model=PreferencesOut, responses=READ_ERRORS, tags=["preferences"])
async def set_my_preferences(
    body: PreferencesIn, request: Request, who: Principal = Depends(requires(PARTICIPANT))
) -> dict[str, Any]:
    """Choose the language of one's messages and turn non-essential kinds off
    (an unknown or essential kind is a 422 naming ``body.muted_kinds``)."""
    return await delivery_log(request).set_preferences(
        pool(request), who, participant_of(who), body.language, body.muted_kinds, request.app.state.clock()
    )


# --------------------------------------------------------------------------- delivery log


@router.get("/messages/summary", response_model=MessagesSummary, responses=READ_ERRORS, tags=["delivery log"])
async def delivery_summary(
    request: Request, country: str | None = Country, who: Principal = Depends(requires(*LOG_READERS))
) -> dict[str, Any]:
    """Counts of the delivery log (a committee: its countries), and where the messages go."""
    counts = await delivery_log(request).summary(pool(request), who, country)
    return {**counts, "delivered_to": request.app.state.delivered_to}


@router.get("/messages", response_model=Page[MessageOut], responses=READ_ERRORS, tags=["delivery log"])
async def list_messages(
    request: Request,
    country: str | None = Country,
    status: MessageStatus | None = None,
    kind: Kind | None = None,
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*LOG_READERS)),
) -> Page[dict[str, Any]]:
    """The messages sent (or not) to the organisation's participants, newest
    first (by ``queued_at``, then ``message_id``: a stable order, so a held
    cursor neither skips nor repeats); a committee sees those about its
    countries only. Failed messages (``status=failed``) say the mail server's
    last answer."""
    return await delivery_log(request).page(
        pool(request), who, country, status, kind.value if kind else None, page
    )


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome notifications",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
    )
    app.state.pool, app.state.schema, app.state.clock = ctx.pool, ctx.store.schema, ctx.clock
    app.state.delivery_log = DeliveryLog(ctx.store.schema)
    app.state.delivered_to = mailer_from(ctx.settings.smtp_url, ctx.settings.data_dir).where
    app.include_router(router)
    part = Export(ctx.store.schema)
    app.include_router(
        export_router(NAME, lambda request, who, pid: part.collect(ctx.pool, who, pid), NotificationsExport)
    )
    install_webhooks(app, ctx)
    install_committees(app, ctx.store.schema)
    return app
