"""The matching REST API (``/v1``): runs, suggestions and choices, pairs,
exclusions. Documented in ``services/matching/README.md``.

Every command runs in one transaction (``Matching.run``): the events, the
read tables and the ``Idempotency-Key``'s stored response commit together.
Pair commands answer with the pair as it now is, with its ``ETag`` (the
pair's version).

Who may call what: the roles in each route's ``requires`` (``ops`` holds none
of them: it sees only metrics); then, on the object, ``service_layer.access``
(another country's or organisation's object is a 404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from libs.api.app import create_service_app
from libs.api.commands import CONCURRENT_CHANGE
from libs.api.idempotency import IdempotencyKey, idempotency_key
from libs.api.locations import url_for
from libs.api.pagination import Page, PageParams, page_params
from libs.api.problems import Problem, invalid, problem_responses
from libs.api.responses import document_json, model_json
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, SERVICE, Principal
from libs.domain.repository import UnitOfWork
from libs.eventstore.store import ConcurrencyError, DuplicateEventError
from libs.gdpr.export import export_router
from libs.observability.correlation import current_correlation_id
from libs.observability.health import database_check
from libs.runtime.service import ServiceContext
from services.matching.bootstrap import Matching
from services.matching.domain.errors import IllegalTransition, InvalidRequest, NotFound
from services.matching.domain.pair import PairStatus
from services.matching.entrypoints.schemas import (
    ChoiceIn,
    DeclineIn,
    DissolveIn,
    ExclusionIn,
    ExclusionLiftedOut,
    ExclusionLiftIn,
    ExclusionOut,
    InterestIn,
    InterestOut,
    PairOut,
    RunConfirmedOut,
    RunConfirmIn,
    RunIn,
    RunOut,
    OffersOut,
    SuggestedMenteesOut,
    SuggestionsOut,
    WaitlistOut,
)
from services.matching.service_layer import bulk, choice, interests, lifecycle, retention, waitlist
from services.matching.service_layer.export import Export, MatchingExport
from services.matching.service_layer.runs import RunRequest, run_matching
from services.matching.service_layer.views import PairFilters, RunFilters

NAME = "matching"
READERS = (HR_ADMIN, REGIONAL_COMMITTEE, SERVICE)
WRITERS = (HR_ADMIN, REGIONAL_COMMITTEE)

CONFLICT = "urn:binome:problem:conflict"

COMMAND_ERRORS = problem_responses(401, 403, 404, 409, 422)
READ_ERRORS = problem_responses(401, 403, 404, 422)

router = APIRouter(prefix="/v1", route_class=ApiRoute)


# --------------------------------------------------------------------------- plumbing


def service(request: Request) -> Matching:
    return request.app.state.matching


async def command(
    request: Request, key: IdempotencyKey | None, work: Callable[[UnitOfWork], Awaitable[Response]]
) -> Response:
    """Run ``work`` in one transaction with the request's idempotency key."""
    return await service(request).run(work, key=key, correlation_id=current_correlation_id())


def _json(model: type, doc: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return model_json(model, doc, status, headers)


async def pair_command(
    request: Request,
    principal: Principal,
    key: IdempotencyKey | None,
    handler: Callable[[UnitOfWork], Awaitable[UUID]],
    status: int = 200,
) -> Response:
    """Run a command on a pair and answer with the pair as it now is."""

    async def work(uow: UnitOfWork) -> Response:
        pair_id = await handler(uow)
        doc = await service(request).views.pair(uow.conn, principal, pair_id)
        headers = {"ETag": f'"{doc["version"]}"'}
        if status == 201:
            headers["Location"] = url_for(request, "get_pair", pair_id=str(pair_id))
        return _json(PairOut, doc, status, headers)

    return await command(request, key, work)


# --------------------------------------------------------------------------- runs


def _run_request(body: RunIn) -> RunRequest:
    return RunRequest(
        wave_ids=body.wave_ids,
        objective=body.objective.value if body.objective else None,
        pins=[(p.mentee_id, p.mentor_id) for p in body.pins],
    )


@router.post("/runs", status_code=201, response_model=RunOut, responses=COMMAND_ERRORS, tags=["runs"])
async def start_run(
    body: RunIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Match the free mentees of one or several waves to the mentors' free seats (exact optimum),
    and propose every pair found. Waves of several countries need hr_admin."""

    async def work(uow: UnitOfWork) -> Response:
        doc = await run_matching(uow, who, _run_request(body), record=True)
        location = url_for(request, "get_run", run_id=str(doc["run_id"]))
        return _json(RunOut, doc, 201, {"Location": location})

    return await command(request, key, work)


@router.post("/runs:preview", response_model=RunOut, responses=COMMAND_ERRORS, tags=["runs"])
async def preview_run(body: RunIn, request: Request, who: Principal = Depends(requires(*WRITERS))) -> Response:
    """What a run would propose now, without recording anything (same inputs, same answer)."""
    async with service(request).pool.acquire() as conn, conn.transaction():
        doc = await run_matching(service(request).unit_of_work(conn), who, _run_request(body), record=False)
    return _json(RunOut, doc)


@router.get("/runs", response_model=Page[RunOut], responses=READ_ERRORS, tags=["runs"])
async def list_runs(
    request: Request,
    programme_id: UUID | None = None,
    wave_id: UUID | None = None,
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS)),
) -> Page[Any]:
    return await service(request).views.runs(service(request).pool, who, RunFilters(programme_id, wave_id), page)


@router.get("/runs/{run_id}", response_model=RunOut, responses=READ_ERRORS, tags=["runs"])
async def get_run(run_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    """A run: its inputs, objective, pairs and the people it left unmatched, with the reason."""
    return _json(RunOut, await service(request).views.run(service(request).pool, who, run_id))


@router.post(
    "/runs/{run_id}:confirm", response_model=RunConfirmedOut, responses=COMMAND_ERRORS, tags=["runs"]
)
async def confirm_run(
    run_id: UUID,
    request: Request,
    body: RunConfirmIn | None = None,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """HR confirms every open proposal of the run (or the chosen ones) for both people, in one
    call and all or nothing: each pair is formed with its own events, as ``:confirm`` does. A
    chosen pair not of the run, or no proposal any more, is a 422 naming it; nothing is written."""
    chosen = body.pair_ids if body else None

    async def work(uow: UnitOfWork) -> Response:
        done = await bulk.confirm_run(uow, service(request).views, who, run_id, chosen)
        skipped = [{"pair_id": p, "status": s} for p, s in done.skipped]
        return _json(RunConfirmedOut, {"run_id": run_id, "confirmed": done.confirmed, "skipped": skipped})

    return await command(request, key, work)


# --------------------------------------------------------------------------- choice


@router.get(
    "/mentees/{mentee_id}/suggestions",
    response_model=SuggestionsOut,
    responses={**READ_ERRORS, **problem_responses(409)},  # 409: the mentee is already paired
    tags=["choice"],
)
async def get_suggestions(
    mentee_id: UUID,
    request: Request,
    k: int | None = Query(None, ge=1, le=20, description="How many (default: the programme's, 5)."),
    who: Principal = Depends(requires(*WRITERS, PARTICIPANT)),
) -> Response:
    """The best mentors with a free seat for this mentee, each score explained per criterion
    (HR, the mentee's committee, or the mentee itself)."""
    async with service(request).pool.acquire() as conn:
        doc = await choice.suggestions(service(request).unit_of_work(conn), who, mentee_id, k)
    return _json(SuggestionsOut, doc)


@router.post(
    "/mentees/{mentee_id}/choices", status_code=201, response_model=PairOut, responses=COMMAND_ERRORS, tags=["choice"]
)
async def choose(
    mentee_id: UUID,
    body: ChoiceIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS, PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """The mentee ranks mentors; the first with a free seat is proposed, the others wait as
    next choices (tried in order when a proposal is declined)."""
    return await pair_command(request, who, key, lambda uow: choice.choose(uow, who, mentee_id, body.mentor_ids), 201)


# --------------------------------------------------------------------------- waitlist


@router.get("/waves/{wave_id}/waitlist", response_model=WaitlistOut, responses=READ_ERRORS, tags=["waitlist"])
async def get_waitlist(wave_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    """The wave's mentees a run left unmatched (capacity_exhausted, no_feasible_partner), with
    their reason and position, first in line first, until a pair is proposed to them."""
    async with service(request).pool.acquire() as conn:
        items = await waitlist.waiting(service(request).unit_of_work(conn), who, wave_id)
    return _json(WaitlistOut, {"wave_id": wave_id, "items": items})


@router.get("/waves/{wave_id}/waitlist/offers", response_model=OffersOut, responses=READ_ERRORS, tags=["waitlist"])
async def get_waitlist_offers(wave_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    """When seats free up: the best next pair for each waiting mentee, in waitlist order, scored
    as the mentee's suggestions are; propose one with ``POST /v1/mentees/{mentee_id}/choices``."""
    async with service(request).pool.acquire() as conn:
        found = await waitlist.offers(service(request).unit_of_work(conn), who, wave_id)
    return _json(OffersOut, {"wave_id": wave_id, "offers": found})


# --------------------------------------------------------------------------- pairs


@router.get("/pairs", response_model=Page[PairOut], responses=READ_ERRORS, tags=["pairs"])
async def list_pairs(
    request: Request,
    programme_id: UUID | None = None,
    wave_id: UUID | None = None,
    country: str | None = Query(None, pattern=r"^[A-Za-z]{2}$"),
    status: PairStatus | None = None,
    participant_id: UUID | None = None,
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS, PARTICIPANT)),
) -> Page[Any]:
    """Pairs, oldest first (a participant: the pairs it is in)."""
    filters = PairFilters(programme_id, wave_id, country, status.value if status else None, participant_id)
    return await service(request).views.pairs(service(request).pool, who, filters, page)


@router.get("/pairs/{pair_id}", response_model=PairOut, responses=READ_ERRORS, tags=["pairs"])
async def get_pair(
    pair_id: UUID, request: Request, who: Principal = Depends(requires(*READERS, PARTICIPANT))
) -> Response:
    """A pair with its score breakdown and where it stands."""
    matching = service(request)
    # The row is held whoever asks (a pair that does not exist is not): who may see it is checked each time.
    row = await matching.held_reads.read(
        ("pair", pair_id), lambda: matching.views.pair_row(matching.pool, pair_id), lambda row: row is not None
    )
    text, version = matching.views.visible_pair(who, pair_id, row)
    return document_json(PairOut, text, headers={"ETag": f'"{version}"'})


@router.post("/pairs/{pair_id}:accept", response_model=PairOut, responses=COMMAND_ERRORS, tags=["pairs"])
async def accept_pair(
    pair_id: UUID,
    request: Request,
    who: Principal = Depends(requires(PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """A person of the pair accepts it; when both have, the pair is formed."""
    return await pair_command(request, who, key, lambda uow: lifecycle.accept(uow, who, pair_id))


@router.post("/pairs/{pair_id}:confirm", response_model=PairOut, responses=COMMAND_ERRORS, tags=["pairs"])
async def confirm_pair(
    pair_id: UUID,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """HR confirms the proposal for both people: the pair is formed."""
    return await pair_command(request, who, key, lambda uow: lifecycle.confirm(uow, who, pair_id))


@router.post("/pairs/{pair_id}:decline", response_model=PairOut, responses=COMMAND_ERRORS, tags=["pairs"])
async def decline_pair(
    pair_id: UUID,
    request: Request,
    body: DeclineIn | None = None,
    who: Principal = Depends(requires(*WRITERS, PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Decline a proposal (a person for its side, HR for both). The seat is free again; for a
    mentee's choice, its next choice is proposed."""
    note = body.note if body else None
    return await pair_command(request, who, key, lambda uow: lifecycle.decline(uow, who, pair_id, note))


@router.post("/pairs/{pair_id}:dissolve", response_model=PairOut, responses=COMMAND_ERRORS, tags=["pairs"])
async def dissolve_pair(
    pair_id: UUID,
    body: DissolveIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS, PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """End a formed pair early, with a reason; both people return to the pool and are never
    proposed to each other again."""
    return await pair_command(
        request, who, key, lambda uow: lifecycle.dissolve(uow, who, pair_id, body.reason, body.note)
    )


@router.post("/pairs/{pair_id}:complete", response_model=PairOut, responses=COMMAND_ERRORS, tags=["pairs"])
async def complete_pair(
    pair_id: UUID,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """A formed pair reached the end of its mentoring."""
    return await pair_command(request, who, key, lambda uow: lifecycle.complete(uow, who, pair_id))


# --------------------------------------------------------------------------- exclusions


@router.post("/exclusions", status_code=201, response_model=ExclusionOut, responses=COMMAND_ERRORS, tags=["pairs"])
async def exclude_pair(
    body: ExclusionIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """HR rules a mentee-mentor pair out: no run or choice proposes it (twice: 409)."""
    exclusion = lifecycle.Exclusion(body.mentee_id, body.mentor_id, body.note)

    async def work(uow: UnitOfWork) -> Response:
        exclusion_id = await lifecycle.exclude(uow, who, exclusion)
        return _json(ExclusionOut, await service(request).views.exclusion(uow.conn, exclusion_id), 201)

    return await command(request, key, work)


@router.post(
    "/exclusions/{exclusion_id}:lift", response_model=ExclusionLiftedOut, responses=COMMAND_ERRORS, tags=["pairs"]
)
async def lift_exclusion(
    exclusion_id: UUID,
    body: ExclusionLiftIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """HR of the mentee's country lifts an exclusion, with a reason: runs and choices may propose
    the pair again (an exclusion not in force: 409; one the caller does not see: 404)."""

    async def work(uow: UnitOfWork) -> Response:
        lifted = await lifecycle.lift_exclusion(uow, who, exclusion_id, body.reason)
        return _json(ExclusionLiftedOut, lifted.model_dump(mode="json", exclude={"actor", "reason"}))

    return await command(request, key, work)


# --------------------------------------------------------------------------- the mentor's side


@router.get(
    "/mentors/{mentor_id}/suggested-mentees",
    response_model=SuggestedMenteesOut,
    responses={**READ_ERRORS, **problem_responses(409)},  # 409: the mentor is not in the pool
    tags=["choice"],
)
async def get_suggested_mentees(
    mentor_id: UUID,
    request: Request,
    k: int | None = Query(None, ge=1, le=20, description="How many (default: the programme's, 5)."),
    who: Principal = Depends(requires(*WRITERS, PARTICIPANT)),
) -> Response:
    """The free mentees of the mentor's wave it would suit best, scored as their suggestions score
    the pair, and whether the mentor expressed interest (HR, the mentor's committee, the mentor)."""
    async with service(request).pool.acquire() as conn:
        doc = await interests.suggested_mentees(service(request).unit_of_work(conn), who, mentor_id, k)
    return _json(SuggestedMenteesOut, doc)


@router.post(
    "/mentors/{mentor_id}/interests",
    status_code=201,
    response_model=InterestOut,
    responses=COMMAND_ERRORS,
    tags=["choice"],
)
async def express_interest(
    mentor_id: UUID,
    body: InterestIn,
    request: Request,
    who: Principal = Depends(requires(PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """The mentor itself says it would like to mentor one of its suggested mentees; HR, the
    committee and the mentee see it in the mentee's suggestions (twice: 409)."""

    async def work(uow: UnitOfWork) -> Response:
        return _json(InterestOut, await interests.express_interest(uow, who, mentor_id, body.mentee_id), 201)

    return await command(request, key, work)


# --------------------------------------------------------------------------- GDPR retention


class NotesExpiredOut(BaseModel):
    at: datetime
    expired: list[UUID]


@router.post("/retention:expire-notes", response_model=NotesExpiredOut, responses=COMMAND_ERRORS, tags=["gdpr"])
async def expire_pair_notes(request: Request, who: Principal = Depends(requires(HR_ADMIN))) -> NotesExpiredOut:
    """Erase now the free-text notes of the organisation's ended pairs past their programme's
    retention (``notes_retention_days``), as the periodic task does: the pair's key is shredded
    and ``PairNotesExpired`` recorded. Global HR admin."""
    vault = request.app.state.vault
    if vault is None:
        raise Problem(503, detail="This service runs without a key vault: notes cannot be erased.")
    now = request.app.state.clock()
    expired = await retention.expire_notes(service(request), vault, now, organisation=who.organisation)
    return NotesExpiredOut(at=now, expired=expired)


# --------------------------------------------------------------------------- errors and app


def _invalid(exc: Exception) -> Problem:
    assert isinstance(exc, InvalidRequest)
    return invalid(
        [{"field": f"body.{exc.field}", "message": exc.message, "type": "rule"}],
        detail="The request cannot be carried out; see 'errors'.",
    )


def _concurrent(exc: Exception) -> Problem:
    detail = "The object changed meanwhile (or exists already); read it again."
    return Problem(409, detail=detail, type=CONCURRENT_CHANGE)


EXCEPTION_MAPPINGS: dict[type[Exception], int | Callable[[Exception], Problem]] = {
    NotFound: 404,
    InvalidRequest: _invalid,
    IllegalTransition: lambda exc: Problem(409, detail=str(exc), type=CONFLICT),
    ConcurrencyError: _concurrent,
    DuplicateEventError: _concurrent,
}


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome matching",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
        exception_mappings=EXCEPTION_MAPPINGS,
    )
    app.state.matching = Matching(ctx.pool, ctx.store, ctx.held_reads)
    app.state.vault = ctx.vault
    app.state.clock = getattr(ctx, "clock", None) or retention.system_clock
    app.include_router(router)
    part = Export(ctx.store.schema, ctx.store)
    app.include_router(export_router(NAME, lambda request, who, pid: part.collect(ctx.pool, who, pid), MatchingExport))
    return app
