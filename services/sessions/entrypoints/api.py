"""The sessions REST API (``/v1``): sessions, check-ins, mentor budgets and a
programme's session settings.

Every command runs in one transaction (``Sessions.run``): the events, the
read tables and the ``Idempotency-Key``'s stored response commit together.
A command on a session answers with the session as it now is and its
``ETag`` (the stream version); ``If-Match`` makes it conditional (stale:
412), and two concurrent changes from the same version give one 409.

Roles: reads for ``hr_admin``, ``regional_committee``, ``service`` and
``participant`` (its own pairs only); changes for ``hr_admin``, the pair's
committee and the pair's two members; check-ins by the members; session
settings changed by ``hr_admin``. ``ops`` holds none of these: it sees
metrics only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from libs.api.app import create_service_app
from libs.api.commands import concurrent_change, if_match_version, rule_broken, stale_version
from libs.api.dates import MONTH_PATTERN, Day, first_day
from libs.api.idempotency import IdempotencyKey, idempotency_key
from libs.api.locations import url_for
from libs.api.pagination import Page, PageParams, page_params
from libs.api.problems import Problem, problem_responses
from libs.api.responses import model_json
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, SERVICE, Principal
from libs.domain.commands import StaleVersion
from libs.domain.repository import UnitOfWork
from libs.events.contexts.sessions import Member
from libs.eventstore.store import ConcurrencyError
from libs.gdpr.export import export_router
from libs.observability.correlation import current_correlation_id
from libs.observability.health import database_check
from libs.runtime.service import ServiceContext
from services.sessions.bootstrap import Clock, Sessions
from services.sessions.domain.errors import InvalidInput, InvalidState, NotFound, TimeTaken
from services.sessions.domain.values import SessionRules, SessionStatus, month_of
from services.sessions.service_layer.export import Export, SessionsExport
from services.sessions.entrypoints.schemas import (
    BudgetOut,
    CancelIn,
    CheckInIn,
    CheckInOut,
    HeldIn,
    MoveIn,
    NoShowIn,
    OutcomesIn,
    OutcomesOut,
    PairOut,
    ScheduleIn,
    SessionOut,
    SessionSettingsIn,
    SessionSettingsOut,
)
from services.sessions.service_layer import commands, handlers
from services.sessions.service_layer.views import BudgetFilters, CheckInFilters, SessionFilters

NAME = "sessions"
READERS = (HR_ADMIN, REGIONAL_COMMITTEE, SERVICE, PARTICIPANT)
WRITERS = (HR_ADMIN, REGIONAL_COMMITTEE, PARTICIPANT)

CONFLICT = "urn:binome:problem:conflict"
TIME_TAKEN = "urn:binome:problem:time-taken"

COMMAND_ERRORS = problem_responses(401, 403, 404, 409, 412, 422)
READ_ERRORS = problem_responses(401, 403, 404, 422)
Country = Query(None, pattern=r"^[A-Za-z]{2}$")
Month = Query(None, pattern=MONTH_PATTERN, description="YYYY-MM, from 1970-01 to 2199-12.")

router = APIRouter(prefix="/v1", route_class=ApiRoute)


# --------------------------------------------------------------------------- plumbing


def service(request: Request) -> Sessions:
    return request.app.state.sessions


def answer(model: type[BaseModel], doc: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return model_json(model, doc, status, headers)


View = Callable[[UnitOfWork, Principal, UUID], Awaitable[dict[str, Any]]]


def session_view(uow: UnitOfWork, who: Principal, session_id: UUID) -> Awaitable[dict[str, Any]]:
    return uow.views.session(uow.conn, who, session_id)


async def command(
    request: Request,
    who: Principal,
    key: IdempotencyKey | None,
    handler: Callable[[UnitOfWork, Principal, Any], Awaitable[UUID]],
    cmd: Any,
    *,
    model: type[BaseModel] = SessionOut,
    view: View = session_view,
    created: tuple[str, str] | None = None,
) -> Response:
    """Run ``cmd`` and answer with the object it made or changed
    (``created``: the route reading a new object and its id parameter: a 201)."""

    async def work(uow: UnitOfWork) -> Response:
        object_id = await handler(uow, who, cmd)
        doc = await view(uow, who, object_id)
        headers = {"ETag": f'"{doc["version"]}"'} if "version" in doc else {}
        if created is None:
            return answer(model, doc, **headers)
        route, param = created
        location = url_for(request, route, **{param: str(object_id)})
        return answer(model, doc, 201, Location=location, **headers)

    return await service(request).run(work, key=key, correlation_id=current_correlation_id())


# --------------------------------------------------------------------------- pairs and sessions


@router.get("/pairs/{pair_id}", response_model=PairOut, responses=READ_ERRORS, tags=["pairs"])
async def get_pair(pair_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> dict[str, Any]:
    """A pair as sessions knows it (from matching's events) and its sessions per status."""
    return await service(request).views.pair_doc(service(request).pool, who, pair_id)


@router.post(
    "/pairs/{pair_id}/sessions", status_code=201, response_model=SessionOut, responses=COMMAND_ERRORS, tags=["sessions"]
)
async def schedule_session(
    pair_id: UUID,
    body: ScheduleIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Schedule a meeting of a formed pair (either member, HR or the pair's committee): in the
    future, 15-120 minutes, topics from the programme's themes, overlapping no other session of
    either person (409 ``time-taken``)."""
    cmd = commands.Schedule(pair_id, body.starts_at, body.duration_minutes, body.format, body.planned_topics)
    return await command(request, who, key, handlers.schedule, cmd, created=("get_session", "session_id"))


@router.get("/sessions", response_model=Page[SessionOut], responses=READ_ERRORS, tags=["sessions"])
async def list_sessions(
    request: Request,
    pair_id: UUID | None = None,
    participant_id: UUID | None = Query(None, description="Sessions of this person, across its pairs."),
    programme_id: UUID | None = None,
    country: str | None = Country,
    status: SessionStatus | None = None,
    starts_from: Day | None = Query(None, alias="from", description="Starting on or after this day (UTC)."),
    starts_before: Day | None = Query(None, alias="to", description="Starting before this day (UTC)."),
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS)),
) -> Page[Any]:
    """Sessions in chronological order."""
    filters = SessionFilters(
        pair_id,
        participant_id,
        programme_id,
        country,
        status.value if status else None,
        _midnight(starts_from),
        _midnight(starts_before),
    )
    return await service(request).views.sessions(service(request).pool, who, filters, page)


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), UTC)


@router.get("/sessions/{session_id}", response_model=SessionOut, responses=READ_ERRORS, tags=["sessions"])
async def get_session(session_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    doc = await service(request).views.session(service(request).pool, who, session_id)
    return answer(SessionOut, doc, ETag=f'"{doc["version"]}"')


@router.post("/sessions/{session_id}:move", response_model=SessionOut, responses=COMMAND_ERRORS, tags=["sessions"])
async def move_session(
    session_id: UUID,
    body: MoveIn,
    request: Request,
    version: int | None = Depends(if_match_version),
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Move a scheduled session to another future time (and duration)."""
    cmd = commands.Move(session_id, body.starts_at, body.duration_minutes, version)
    return await command(request, who, key, handlers.move, cmd)


@router.post("/sessions/{session_id}:cancel", response_model=SessionOut, responses=COMMAND_ERRORS, tags=["sessions"])
async def cancel_session(
    session_id: UUID,
    body: CancelIn,
    request: Request,
    version: int | None = Depends(if_match_version),
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Cancel a scheduled session, with a reason; less notice than the programme's threshold is late."""
    return await command(request, who, key, handlers.cancel, commands.Cancel(session_id, body.reason, version))


@router.post(
    "/sessions/{session_id}:mark-held", response_model=SessionOut, responses=COMMAND_ERRORS, tags=["sessions"]
)
async def mark_held(
    session_id: UUID,
    body: HeldIn,
    request: Request,
    version: int | None = Depends(if_match_version),
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Record that a started session took place: actual minutes, the mentor's preparation, topics
    covered, a note. The minutes count in the mentor's budget of that month."""
    cmd = commands.Hold(
        session_id, body.actual_minutes, body.preparation_minutes, body.topics_covered, body.note, version
    )
    return await command(request, who, key, handlers.hold, cmd)


@router.post(
    "/sessions/{session_id}:mark-no-show", response_model=SessionOut, responses=COMMAND_ERRORS, tags=["sessions"]
)
async def mark_no_show(
    session_id: UUID,
    body: NoShowIn,
    request: Request,
    version: int | None = Depends(if_match_version),
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Record that a member did not come to a started session."""
    cmd = commands.MarkNoShow(session_id, Member(body.absent), version)
    return await command(request, who, key, handlers.mark_no_show, cmd)


@router.post("/sessions:record-outcomes", response_model=OutcomesOut, responses=COMMAND_ERRORS, tags=["sessions"])
async def record_outcomes(
    body: OutcomesIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Record the outcome of many started sessions at once (held, with its minutes; or a no-show),
    all or nothing: each records its own events, as ``:mark-held`` / ``:mark-no-show`` do. A row
    that cannot be recorded (unknown or another country's session, not started, held already, a
    topic outside the programme) is a 422 naming ``body.outcomes.<i>``; nothing is written."""
    outcomes = [
        commands.Hold(o.session_id, o.actual_minutes, o.preparation_minutes, o.topics_covered, o.note)
        if o.outcome == "held"
        else commands.MarkNoShow(o.session_id, Member(o.absent))
        for o in body.outcomes
    ]

    async def work(uow: UnitOfWork) -> Response:
        done = await handlers.record_outcomes(uow, who, commands.RecordOutcomes(outcomes))
        return answer(OutcomesOut, {"sessions": [await uow.views.session(uow.conn, who, s) for s in done]})

    return await service(request).run(work, key=key, correlation_id=current_correlation_id())


# --------------------------------------------------------------------------- check-ins


def check_in_view(uow: UnitOfWork, who: Principal, check_in_id: UUID) -> Awaitable[dict[str, Any]]:
    return uow.views.check_in(uow.conn, who, check_in_id)


@router.post(
    "/pairs/{pair_id}/check-ins",
    status_code=201,
    response_model=CheckInOut,
    responses=COMMAND_ERRORS,
    tags=["check-ins"],
)
async def record_check_in(
    pair_id: UUID,
    body: CheckInIn,
    request: Request,
    who: Principal = Depends(requires(PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """A member's progress point on its formed pair: how it is going (1-5), blockers, next step."""
    cmd = commands.RecordCheckIn(pair_id, body.mood, body.blockers, body.next_step)
    return await command(
        request,
        who,
        key,
        handlers.record_check_in,
        cmd,
        model=CheckInOut,
        view=check_in_view,
        created=("get_check_in", "check_in_id"),
    )


@router.get("/check-ins", response_model=Page[CheckInOut], responses=READ_ERRORS, tags=["check-ins"])
async def list_check_ins(
    request: Request,
    pair_id: UUID | None = None,
    participant_id: UUID | None = None,
    programme_id: UUID | None = None,
    country: str | None = Country,
    member: Member | None = None,
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS)),
) -> Page[Any]:
    filters = CheckInFilters(pair_id, participant_id, programme_id, country, member.value if member else None)
    return await service(request).views.check_ins(service(request).pool, who, filters, page)


@router.get("/check-ins/{check_in_id}", response_model=CheckInOut, responses=READ_ERRORS, tags=["check-ins"])
async def get_check_in(
    check_in_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))
) -> dict[str, Any]:
    return await service(request).views.check_in(service(request).pool, who, check_in_id)


# --------------------------------------------------------------------------- budgets and settings


@router.get("/budgets", response_model=Page[BudgetOut], responses=READ_ERRORS, tags=["budgets"])
async def list_budgets(
    request: Request,
    month: str | None = Month,
    mentor_id: UUID | None = None,
    programme_id: UUID | None = None,
    country: str | None = Country,
    over_budget: bool | None = None,
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS)),
) -> Page[Any]:
    """Mentors' months with time logged (a mentor appears once it has logged time)."""
    filters = BudgetFilters(first_day(month), mentor_id, programme_id, country, over_budget)
    return await service(request).views.budgets(service(request).pool, who, filters, page)


@router.get("/mentors/{mentor_id}/budget", response_model=BudgetOut, responses=READ_ERRORS, tags=["budgets"])
async def mentor_budget(
    mentor_id: UUID,
    request: Request,
    month: str | None = Month,
    who: Principal = Depends(requires(*READERS)),
) -> dict[str, Any]:
    """A mentor's time in a month (default: this month): preparation plus sessions against the budget."""
    sessions = service(request)
    day = first_day(month) or month_of(sessions.clock())
    return await sessions.views.mentor_budget(sessions.pool, who, mentor_id, day)


def rules_view(uow: UnitOfWork, who: Principal, programme_id: UUID) -> Awaitable[dict[str, Any]]:
    return uow.views.rules_doc(uow.conn, who, programme_id)


@router.get(
    "/programmes/{programme_id}/session-settings",
    response_model=SessionSettingsOut,
    responses=READ_ERRORS,
    tags=["settings"],
)
async def get_session_settings(
    programme_id: UUID, request: Request, who: Principal = Depends(requires(HR_ADMIN, REGIONAL_COMMITTEE, SERVICE))
) -> dict[str, Any]:
    """A programme's mentor time budget and late-cancellation threshold (defaults until set)."""
    return await service(request).views.rules_doc(service(request).pool, who, programme_id)


@router.put(
    "/programmes/{programme_id}/session-settings",
    response_model=SessionSettingsOut,
    responses=COMMAND_ERRORS,
    tags=["settings"],
)
async def set_session_settings(
    programme_id: UUID,
    body: SessionSettingsIn,
    request: Request,
    who: Principal = Depends(requires(HR_ADMIN)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Set a programme's session rules (global HR admin). Budgets of time logged from now on use them."""
    rules = SessionRules(body.budget_share_percent, body.weekly_hours, body.late_cancellation_hours)
    cmd = commands.SetRules(programme_id, rules)
    return await command(request, who, key, handlers.set_rules, cmd, model=SessionSettingsOut, view=rules_view)


# --------------------------------------------------------------------------- errors and app


def _time_taken(exc: Exception) -> Problem:
    assert isinstance(exc, TimeTaken)
    return Problem(
        409,
        detail=str(exc),
        type=TIME_TAKEN,
        participant_id=str(exc.participant_id),
        conflicting_session_id=str(exc.session_id),
    )


EXCEPTION_MAPPINGS: dict[type[Exception], int | Callable[[Exception], Problem]] = {
    NotFound: 404,
    InvalidInput: rule_broken,
    InvalidState: lambda exc: Problem(409, detail=str(exc), type=CONFLICT),
    TimeTaken: _time_taken,
    ConcurrencyError: concurrent_change,
    StaleVersion: stale_version,
}


def create_app(ctx: ServiceContext, clock: Clock | None = None) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome sessions",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
        exception_mappings=EXCEPTION_MAPPINGS,
    )
    app.state.sessions = Sessions(ctx.pool, ctx.store, clock or ctx.clock)  # a test's clock, else the platform's
    app.include_router(router)
    part = Export(ctx.store.schema)
    app.include_router(
        export_router(NAME, lambda request, who, pid: part.collect(ctx.pool, who, pid), SessionsExport)
    )
    return app
