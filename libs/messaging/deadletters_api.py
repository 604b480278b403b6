"""``GET /v1/dead-letters`` and ``POST /v1/dead-letters:redrive``: the events
a service's consumers parked, for ops only.

Installed by ``ServiceDefinition.build_app`` on every service that keeps
projections. An ops caller sees the rows of its organisation and those of no
known organisation (records that did not decode). The listing shows where an
event came from and why it failed, never its payload (which may hold personal
data). A redrive runs in one transaction with the ``Idempotency-Key``, if
sent: a retried call answers the first call's results.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from libs.api.idempotency import IdempotencyKey, IdempotencyKeys, idempotency_key, run_idempotently
from libs.api.pagination import Page, PageParams, cursor_scope, page_params
from libs.api.problems import Problem, invalid, problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import OPS, Principal
from libs.messaging.deadletters import Redriver

router = APIRouter(tags=["ops"], route_class=ApiRoute)


class DeadLetterOut(BaseModel):
    id: int
    consumer: str
    event_id: uuid.UUID | None = Field(description="Null when the record did not decode.")
    event_type: str | None
    topic: str
    partition: int
    offset: int
    source_position: int | None = Field(description="The event's position in its source's event store, when known.")
    reason: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


class RedriveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    consumer: str = Field(min_length=1, max_length=200, description="The projection (consumer group) that parked it.")
    event_id: uuid.UUID | None = Field(None, description="Redrive this event only...")
    all: bool = Field(False, description="...or every row of the consumer visible to the caller.")


class RedriveResultOut(BaseModel):
    id: int
    event_id: uuid.UUID | None
    outcome: Literal["applied", "already_applied", "failed"]
    attempts: int
    reason: str | None = Field(None, description="Why it failed again (failed only).")


class RedriveOut(BaseModel):
    consumer: str
    results: list[RedriveResultOut]


def _redriver(request: Request) -> Redriver:
    return request.app.state.redriver


@router.get("/v1/dead-letters", response_model=Page[DeadLetterOut], responses=problem_responses(401, 403, 422))
async def list_dead_letters(
    request: Request,
    consumer: str | None = Query(None, max_length=200, description="Only this consumer's rows."),
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(OPS)),
) -> Page[DeadLetterOut]:
    """Events this service's consumers parked, oldest first."""
    redriver = _redriver(request)
    scope = cursor_scope(consumer=consumer)
    rows = await redriver.dead_letters.page(
        redriver.pool, consumer=consumer, organisation=who.organisation, after_id=page.after(scope), limit=page.limit + 1
    )
    return Page.of(rows, page.limit, scope, key=lambda r: r["id"], item=lambda r: DeadLetterOut(**dict(r)))


@router.post(
    "/v1/dead-letters:redrive", response_model=RedriveOut, responses=problem_responses(401, 403, 404, 409, 422)
)
async def redrive_dead_letters(
    body: RedriveIn,
    request: Request,
    who: Principal = Depends(requires(OPS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Apply parked events again through their projection: one (``event_id``) or ``all``.

    Each result says what happened: ``applied`` (the row is gone),
    ``already_applied`` (gone, nothing to do) or ``failed`` (kept, one more
    attempt, the new reason).
    """
    redriver = _redriver(request)
    if (body.event_id is None) == (not body.all):
        message = "Give either event_id or all=true."
        raise invalid([{"field": "body.event_id", "message": message, "type": "value_error"}], detail=message)
    if body.consumer not in redriver.projections:
        message = f"No projection {body.consumer!r} in this service; known: {', '.join(sorted(redriver.projections))}."
        raise invalid([{"field": "body.consumer", "message": message, "type": "value_error"}], detail=message)

    async def work(conn) -> Response:
        results = await redriver.redrive(conn, body.consumer, event_id=body.event_id, organisation=who.organisation)
        if body.event_id is not None and not results:
            raise Problem(404, detail=f"No dead letter of {body.consumer} for event {body.event_id}.")
        out = RedriveOut(consumer=body.consumer, results=[RedriveResultOut(**asdict(r)) for r in results])
        return Response(out.model_dump_json(), media_type="application/json")

    return await run_idempotently(redriver.pool, request.app.state.dead_letter_keys, key, work)


def install_dead_letters(app, redriver: Redriver) -> None:
    """Serve ``redriver``'s dead letters on ``app`` (ops only)."""
    app.state.redriver = redriver
    app.state.dead_letter_keys = IdempotencyKeys(redriver.schema)
    app.include_router(router)
