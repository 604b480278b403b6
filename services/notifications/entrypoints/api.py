"""The notifications REST API (``/v1``): a participant's preferences.

Roles: a participant reads its own preferences.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request

from libs.api.app import create_service_app
from libs.api.problems import problem_responses
from libs.api.security import requires
from libs.auth.principal import PARTICIPANT, Forbidden, Principal
from libs.observability.health import database_check
from libs.runtime.service import ServiceContext
from services.notifications.entrypoints.schemas import PreferencesOut
from services.notifications.entrypoints.webhooks import install_webhooks

NAME = "notifications"
READ_ERRORS = problem_responses(401, 403, 422)

router = APIRouter(prefix="/v1")


def participant_of(who: Principal) -> UUID:
    """The participant a participant token speaks for (its subject)."""
    try:
        return UUID(who.subject)
    except ValueError:
        raise Forbidden("this token names no participant") from None


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


@router.get("/preferences/me", response_model=PreferencesOut, responses=READ_ERRORS, tags=["preferences"])
async def my_preferences(request: Request, who: Principal = Depends(requires(PARTICIPANT))) -> dict[str, Any]:
    """The calling participant's message preferences (defaults until they change them)."""
    participant_id = participant_of(who)
    row = await pool(request).fetchrow(
        f"SELECT language, muted_kinds, updated_at FROM {request.app.state.schema}.preferences"
        " WHERE participant_id = $1 AND organisation = $2",
        participant_id,
        who.organisation,
    )
    if row is None:
        return {"participant_id": participant_id, "language": None, "muted_kinds": [], "updated_at": None}
    return {"participant_id": participant_id, **dict(row)}


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome notifications",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
    )
    app.state.pool, app.state.schema = ctx.pool, ctx.store.schema
    app.include_router(router)
    install_webhooks(app, ctx)
    return app
