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
from libs.api.pagination import Page, PageParams, cursor_scope, invalid_query, page_params
from libs.api.problems import Problem, problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, Forbidden, Principal, normalise_country
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


def schema(request: Request) -> str:
    return request.app.state.schema


# --------------------------------------------------------------------------- preferences


async def _preferences(request: Request, conn: asyncpg.Connection | asyncpg.Pool, who: Principal) -> dict[str, Any]:
    participant_id = participant_of(who)
    row = await conn.fetchrow(
        f"SELECT language, muted_kinds, updated_at FROM {schema(request)}.preferences"
        " WHERE participant_id = $1 AND organisation = $2",
        participant_id,
        who.organisation,
    )
    if row is None:
        return {"participant_id": participant_id, "language": None, "muted_kinds": [], "updated_at": None}
    return {"participant_id": participant_id, **dict(row)}


@router.get("/preferences/me", response_model=PreferencesOut, responses=READ_ERRORS, tags=["preferences"])
async def my_preferences(request: Request, who: Principal = Depends(requires(PARTICIPANT))) -> dict[str, Any]:
    """The calling participant's message preferences (defaults until they change them)."""
    return await _preferences(request, pool(request), who)


@router.put("/preferences/me", response_model=PreferencesOut, responses=READ_ERRORS, tags=["preferences"])
async def set_my_preferences(
    body: PreferencesIn, request: Request, who: Principal = Depends(requires(PARTICIPANT))
) -> dict[str, Any]:
    """Choose the language of one's messages and turn non-essential kinds off
    (an unknown or essential kind is a 422 naming ``body.muted_kinds``)."""
    participant_id = participant_of(who)
    async with pool(request).acquire() as conn, conn.transaction():
        await conn.execute(
            f"""INSERT INTO {schema(request)}.preferences (participant_id, organisation, language, muted_kinds, updated_at)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (participant_id) DO UPDATE SET language = EXCLUDED.language,
                    muted_kinds = EXCLUDED.muted_kinds, updated_at = EXCLUDED.updated_at
                WHERE {schema(request)}.preferences.organisation = EXCLUDED.organisation""",
            participant_id,
            who.organisation,
            body.language,
            sorted(set(body.muted_kinds)),
            request.app.state.clock(),
        )
        return await _preferences(request, conn, who)


# --------------------------------------------------------------------------- delivery log


def _visible(who: Principal, country: str | None, args: list[Any]) -> list[str]:
    """The WHERE terms (numbered after ``args``, which they extend) of the
    messages the caller may see: its organisation, and a committee's
    countries; a ``country`` it may not see is a 404."""
    args.append(who.organisation)
    where = [f"organisation = ${len(args)}"]
    if country is not None:
        country = normalise_country(country)
        if not who.can_see_country(country):
            raise Problem(404, detail=f"country {country} not found")
        args.append(country)
        where.append(f"country = ${len(args)}")
    elif not who.sees_all_countries():
        args.append(sorted(who.countries))
        where.append(f"country = ANY(${len(args)}::text[])")
    return where


@router.get("/messages/summary", response_model=MessagesSummary, responses=READ_ERRORS, tags=["delivery log"])
async def delivery_summary(
    request: Request, country: str | None = Country, who: Principal = Depends(requires(*LOG_READERS))
) -> dict[str, Any]:
    """Counts of the delivery log (a committee: its countries), and where the messages go."""
    args: list[Any] = []
    where = _visible(who, country, args)
    row = await pool(request).fetchrow(
        f"""SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
                   count(*) FILTER (WHERE status = 'delivered') AS delivered,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'withdrawn') AS withdrawn,
                   count(*) FILTER (WHERE with_invite) AS invites
            FROM {schema(request)}.messages WHERE {' AND '.join(where)}""",
        *args,
    )
    return {**dict(row), "delivered_to": request.app.state.delivered_to}


@router.get("/messages", response_model=Page[MessageOut], responses=READ_ERRORS, tags=["delivery log"])
async def delivery_log(
    request: Request,
    country: str | None = Country,
    status: MessageStatus | None = None,
    kind: Kind | None = None,
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*LOG_READERS)),
) -> Page[MessageOut]:
    """The messages sent (or not) to the organisation's participants, newest
    first; a committee sees those about its countries only. Failed messages
    (``status=failed``) say the mail server's last answer."""
    args: list[Any] = []
    where = _visible(who, country, args)
    country = normalise_country(country) if country else None
    for column, value in (("status", status), ("kind", kind.value if kind else None)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    scope = cursor_scope(country=country, status=status, kind=kind)
    after = page.after(scope)
    if after is not None:
        if not isinstance(after, int):
            raise invalid_query("cursor", "not a cursor of this list")
        args.append(after)
        where.append(f"row_id < ${len(args)}")
    rows = await pool(request).fetch(
        f"""SELECT row_id, message_id, recipient_id, kind, country, language, with_invite, status, attempts,
                   last_error, queued_at, finished_at
            FROM {schema(request)}.messages WHERE {' AND '.join(where)} ORDER BY row_id DESC LIMIT {page.limit + 1}""",
        *args,
    )
    return Page[MessageOut].of(rows, page.limit, scope, key=lambda r: r["row_id"], item=lambda r: MessageOut(**dict(r)))


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome notifications",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
    )
    app.state.pool, app.state.schema, app.state.clock = ctx.pool, ctx.store.schema, ctx.clock
    app.state.delivered_to = mailer_from(ctx.settings.smtp_url, ctx.settings.data_dir).where
    app.include_router(router)
    part = Export(ctx.store.schema)
    app.include_router(
        export_router(NAME, lambda request, who, pid: part.collect(ctx.pool, who, pid), NotificationsExport)
    )
    install_webhooks(app, ctx)
    install_committees(app, ctx.store.schema)
    return app
