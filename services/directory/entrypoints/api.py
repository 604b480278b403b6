"""The directory app: SCIM 2.0 under ``/v2`` (``scim/routes.py``, for the
organisation's HR system) and, under ``/v1``, the GDPR erasure of a person
(for the global HR admin)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from libs.api.app import create_service_app
from libs.api.problems import problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, Principal
from libs.domain.errors import NotFound
from libs.observability.correlation import current_correlation_id
from libs.observability.health import database_check
from libs.runtime.service import ServiceContext
from services.directory.scim import openapi as scim_openapi
from services.directory.scim.routes import router as scim_router
from services.directory.service_layer.people import People

NAME = "directory"

router = APIRouter(prefix="/v1", tags=["gdpr"], route_class=ApiRoute)


class ErasureOut(BaseModel):
    person_id: UUID
    erased: bool


@router.post("/people/{person_id}:erase", response_model=ErasureOut, responses=problem_responses(401, 403, 404, 422))
async def erase(person_id: UUID, request: Request, who: Principal = Depends(requires(HR_ADMIN))) -> ErasureOut:
    """GDPR erasure of a provisioned person (global HR admin): records
    ``PersonErased`` (the person leaves the directory if still there), then
    shreds their data key, so every personal value about them in the log reads
    as erased. Safe to retry."""
    await request.app.state.people.erase(who, person_id, current_correlation_id())
    return ErasureOut(person_id=person_id, erased=True)


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome directory (SCIM 2.0)",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
        exception_mappings={NotFound: 404},
    )
    app.state.people = People(ctx.pool, ctx.store, ctx.vault)
    app.include_router(scim_router)
    scim_openapi.without_validation_422(app)
    app.include_router(router)
    return app
