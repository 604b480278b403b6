"""The enrollment REST API (``/v1``): programmes, waves, participants.

Every command runs in one transaction (``Enrollment.run``): the events, the
read tables, and the ``Idempotency-Key``'s stored response commit together.
A command answers with the object as it now is, with its ``ETag`` (the
aggregate's version); ``PATCH`` takes ``If-Match`` (a stale version is a 412).

Who may call what: the roles in each route's ``requires``; then, on the
object, the rules of ``service_layer.views`` (another country's or
organisation's object is a 404). ``ops`` holds none of these roles: it sees no
business data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from libs.api.app import create_service_app
from libs.api.commands import concurrent_change, if_match_version, rule_broken, stale_version
from libs.api.held_reads import seen_by
from libs.api.idempotency import IdempotencyKey, idempotency_key
from libs.api.locations import url_for
from libs.api.pagination import Page, PageParams, page_params
from libs.api.patch import sent
from libs.api.problems import Problem, import_rejected, problem_responses
from libs.api.responses import model_json, page_json
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, SERVICE, Principal
from libs.domain.commands import StaleVersion
from libs.domain.repository import UnitOfWork
from libs.gdpr.export import export_router
from libs.observability.correlation import current_correlation_id
from libs.eventstore.store import ConcurrencyError, DuplicateEventError
from libs.observability.health import database_check
from libs.runtime.service import ServiceContext
from libs import tabular
from services.enrollment.bootstrap import Enrollment
from services.enrollment.domain.errors import DuplicateEnrolment, InvalidInput, InvalidState, NotFound
from services.enrollment.domain.values import WaveStatus
from services.enrollment.domain.wave import WavePlan
from services.enrollment.entrypoints.schemas import (
    DirectoryEnrolmentIn,
    IMPORT_COLUMNS,
    IMPORT_LEVEL_COLUMNS,
    IMPORT_LIST_COLUMNS,
    EnrolmentIn,
    FunnelOut,
    ImportReportOut,
    NeedsIn,
    ParticipantOut,
    ParticipantQuery,
    ProfilePatch,
    ProgrammeIn,
    ProgrammeOut,
    QualificationIn,
    SettingsPatch,
    WaveIn,
    WaveOut,
    TransferIn,
    TransferManyIn,
    TransferManyOut,
    WithdrawIn,
)
from services.enrollment.service_layer import commands, handlers
from services.enrollment.service_layer.importing import ImportRejected, import_participants
from services.enrollment.service_layer.views import ParticipantFilters, ParticipantsPage, WaveFilters
from services.enrollment.service_layer.export import EnrollmentExport

NAME = "enrollment"
READERS = (HR_ADMIN, REGIONAL_COMMITTEE, SERVICE)
WRITERS = (HR_ADMIN, REGIONAL_COMMITTEE)
MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000

CONFLICT = "urn:binome:problem:conflict"
DUPLICATE_ENROLMENT = "urn:binome:problem:duplicate-enrolment"

COMMAND_ERRORS = problem_responses(401, 403, 404, 409, 422)
READ_ERRORS = problem_responses(401, 403, 404, 422)

router = APIRouter(prefix="/v1", route_class=ApiRoute)


# --------------------------------------------------------------------------- plumbing


def service(request: Request) -> Enrollment:
    return request.app.state.enrollment


@dataclass(frozen=True)
class Resource:
    """How to read back and address the object a command acted on."""

    model: type[BaseModel]
    view: Callable[[UnitOfWork, Principal, UUID], Awaitable[dict[str, Any]]]
    route: str
    param: str


PROGRAMME = Resource(
    ProgrammeOut, lambda uow, who, id_: uow.views.programme(uow.conn, who, id_), "get_programme", "programme_id"
)
WAVE = Resource(WaveOut, lambda uow, who, id_: uow.views.wave(uow.conn, who, id_), "get_wave", "wave_id")
PARTICIPANT_ = Resource(
    ParticipantOut, lambda uow, who, id_: uow.views.participant(uow.conn, who, id_), "get_participant", "participant_id"
)


def document(
    model: type[BaseModel], doc: dict[str, Any], status: int = 200, location: str | None = None
) -> Response:
    headers = {"ETag": f'"{doc["version"]}"'}
    if location is not None:
        headers["Location"] = location
    return model_json(model, doc, status, headers)


async def execute(
    request: Request,
    principal: Principal,
    key: IdempotencyKey | None,
    handler: Callable[[UnitOfWork, Principal, Any], Awaitable[UUID]],
    command: Any,
    resource: Resource,
    *,
    created: bool = False,
) -> Response:
    """Run ``command`` and answer with the object it created or changed."""

    async def work(uow: UnitOfWork) -> Response:
        object_id = await handler(uow, principal, command)
        doc = await resource.view(uow, principal, object_id)
        if not created:
            return document(resource.model, doc)
        location = url_for(request, resource.route, **{resource.param: str(object_id)})
        return document(resource.model, doc, 201, location)

    return await service(request).run(work, key=key, correlation_id=current_correlation_id())


async def read(request: Request, principal: Principal, resource: Resource, object_id: UUID) -> Response:
    async with service(request).pool.acquire() as conn:
        doc = await resource.view(service(request).unit_of_work(conn), principal, object_id)
    return document(resource.model, doc)


# --------------------------------------------------------------------------- programmes


@router.post("/programmes", status_code=201, response_model=ProgrammeOut, responses=COMMAND_ERRORS, tags=["programmes"])
async def create_programme(
    body: ProgrammeIn,
    request: Request,
    who: Principal = Depends(requires(HR_ADMIN)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Create a programme (global HR admin); unspecified settings take the defaults."""
    command = commands.CreateProgramme(name=body.name, mode=body.mode, settings=sent(body.settings))
    return await execute(request, who, key, handlers.create_programme, command, PROGRAMME, created=True)


@router.get("/programmes", response_model=Page[ProgrammeOut], responses=READ_ERRORS, tags=["programmes"])
async def list_programmes(
    request: Request, page: PageParams = Depends(page_params), who: Principal = Depends(requires(*READERS))
) -> Page[Any]:
    return await service(request).views.programmes(service(request).pool, who, page)


@router.get("/programmes/{programme_id}", response_model=ProgrammeOut, responses=READ_ERRORS, tags=["programmes"])
async def get_programme(
    programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS, PARTICIPANT))
) -> Response:
    """A programme: every business role of its organisation reads it (participants: their own)."""
    return await read(request, who, PROGRAMME, programme_id)


@router.patch(
    "/programmes/{programme_id}/settings",
    response_model=ProgrammeOut,
    responses={**COMMAND_ERRORS, **problem_responses(412)},
    tags=["programmes"],
)
async def change_programme_settings(
    programme_id: UUID,
    body: SettingsPatch,  # type: ignore[valid-type]
    request: Request,
    version: int | None = Depends(if_match_version),
    who: Principal = Depends(requires(HR_ADMIN)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Change settings: themes, languages, learner profiles, intentions, needs questions (2-3),
    qualification and seniority rules, matching weights. Sent settings replace the current ones."""
    command = commands.ChangeProgrammeSettings(programme_id, sent(body), version)
    return await execute(request, who, key, handlers.change_programme_settings, command, PROGRAMME)


# --------------------------------------------------------------------------- waves


@router.post(
    "/programmes/{programme_id}/waves",
    status_code=201,
    response_model=WaveOut,
    responses=COMMAND_ERRORS,
    tags=["waves"],
)
async def open_wave(
    programme_id: UUID,
    body: WaveIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Open a wave in one country (HR admin, or the regional committee of that country)."""
    command = commands.OpenWave(programme_id, WavePlan(**body.model_dump()))
    return await execute(request, who, key, handlers.open_wave, command, WAVE, created=True)


@router.get("/waves", response_model=Page[WaveOut], responses=READ_ERRORS, tags=["waves"])
async def list_waves(
    request: Request,
    programme_id: UUID | None = None,
    country: str | None = Query(None, pattern=r"^[A-Za-z]{2}$"),
    status: WaveStatus | None = None,
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS)),
) -> Page[Any]:
    filters = WaveFilters(programme_id, country, status.value if status else None)
    return await service(request).views.waves(service(request).pool, who, filters, page)


@router.get("/waves/{wave_id}", response_model=WaveOut, responses=READ_ERRORS, tags=["waves"])
async def get_wave(wave_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    return await read(request, who, WAVE, wave_id)


@router.post("/waves/{wave_id}:close-enrolment", response_model=WaveOut, responses=COMMAND_ERRORS, tags=["waves"])
async def close_wave_enrolment(
    wave_id: UUID,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """open -> enrolment closed (matching may run)."""
    return await execute(request, who, key, handlers.close_wave_enrolment, commands.CloseWaveEnrolment(wave_id), WAVE)


@router.post("/waves/{wave_id}:end", response_model=WaveOut, responses=COMMAND_ERRORS, tags=["waves"])
async def end_wave(
    wave_id: UUID,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """enrolment closed -> ended."""
    return await execute(request, who, key, handlers.end_wave, commands.EndWave(wave_id), WAVE)


@router.get("/waves/{wave_id}/funnel", response_model=FunnelOut, responses=READ_ERRORS, tags=["waves"])
async def wave_funnel(wave_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> dict[str, Any]:
    """The wave's enrolment funnel per role: enrolled, withdrawn, needs answered or qualified, matchable."""
    return await service(request).views.funnel(service(request).pool, who, wave_id)


# --------------------------------------------------------------------------- participants


@router.post(
    "/waves/{wave_id}/participants",
    status_code=201,
    response_model=ParticipantOut,
    responses=COMMAND_ERRORS,
    tags=["participants"],
)
async def enrol(
    wave_id: UUID,
    body: EnrolmentIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Enrol a person into an open wave, as mentor or mentee (one enrolment per person per programme)."""
    command = commands.Enrol(wave_id, body.to_enrolment())
    return await execute(request, who, key, handlers.enrol, command, PARTICIPANT_, created=True)


@router.post(
    "/waves/{wave_id}/participants:from-directory",
    status_code=201,
    response_model=ParticipantOut,
    responses=COMMAND_ERRORS,
    tags=["participants"],
)
async def enrol_from_directory(
    wave_id: UUID,
    body: DirectoryEnrolmentIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Enrol a person provisioned in the organisation's HR directory (SCIM), named by employee
    reference (``employeeNumber``): the profile fields the body leaves out come from the directory,
    and the wave must be in the person's country. 422 naming ``employee_ref`` when no active person
    has it, naming a field when neither the body nor the directory gives it."""
    command = commands.EnrolFromDirectory(wave_id, body.employee_ref, body.given())
    return await execute(request, who, key, handlers.enrol_from_directory, command, PARTICIPANT_, created=True)


@router.post(
    "/waves/{wave_id}/participants:import",
    response_model=ImportReportOut,
    responses={**COMMAND_ERRORS, **problem_responses(413, 415)},
    tags=["participants"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/EnrolmentIn"}}
                },
            },
        }
    },
)
async def import_participants_route(
    wave_id: UUID,
    request: Request,
    mode: Literal["all_or_nothing", "valid_only"] = "all_or_nothing",
    source: Literal["file", "directory"] = Query(
        "file",
        description="directory: each row names a person of the organisation's HR directory by employee_ref and"
        " may leave out what the directory gives (the rows of participants:from-directory).",
    ),
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Import a wave's participants from CSV or JSON. Every row is checked first; with a bad
    row nothing is imported (422 listing each bad row's line and field) unless
    ``mode=valid_only``. Uploading the same file again imports nothing more."""
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise Problem(413, detail=f"An import file holds at most {MAX_IMPORT_BYTES // (1024 * 1024)} MiB.")
    command = commands.ImportParticipants(
        wave_id,
        hashlib.sha256(body).hexdigest(),
        _import_rows(request.headers.get("content-type", ""), body, from_directory=source == "directory"),
        mode == "valid_only",
    )

    async def work(uow: UnitOfWork) -> Response:
        report = await import_participants(uow, who, command)
        return Response(ImportReportOut.model_validate(report, from_attributes=True).model_dump_json(), media_type="application/json")

    return await service(request).run(work, key=key, correlation_id=current_correlation_id())


def _import_rows(content_type: str, body: bytes, *, from_directory: bool = False) -> list[commands.ImportRow]:
    media_type = content_type.split(";")[0].strip().lower()
    try:
        if media_type in ("text/csv", "application/csv"):
            table = tabular.read_csv(
                body, columns=IMPORT_COLUMNS, list_columns=IMPORT_LIST_COLUMNS, level_columns=IMPORT_LEVEL_COLUMNS
            )
        elif media_type == "application/json":
            table = tabular.read_json(body)
        else:
            raise Problem(415, detail="Send text/csv or application/json.")
    except tabular.UnreadableFile as exc:
        raise exc.problem() from None
    if len(table.rows) + len(table.bad_rows) > MAX_IMPORT_ROWS:
        raise Problem(413, detail=f"An import holds at most {MAX_IMPORT_ROWS} rows; split the file.")
    rows = [commands.ImportRow(bad.line, None, (bad,)) for bad in table.bad_rows]
    for row in table.rows:
        try:
            if from_directory:  # the directory gives the rest, in the command's transaction
                given = DirectoryEnrolmentIn.model_validate(row.values).given()
                rows.append(commands.ImportRow(row.line, None, given=given))
            else:
                rows.append(commands.ImportRow(row.line, EnrolmentIn.model_validate(row.values).to_enrolment()))
        except ValidationError as exc:
            errors = tuple(
                tabular.RowError(row.line, ".".join(str(p) for p in e["loc"]) or "row", e["msg"]) for e in exc.errors()
            )
            rows.append(commands.ImportRow(row.line, None, errors))
    return sorted(rows, key=lambda r: r.line)


@router.get("/participants", response_model=Page[ParticipantOut], responses=READ_ERRORS, tags=["participants"])
async def list_participants(
    request: Request,
    query: Annotated[ParticipantQuery, Query()],
    who: Principal = Depends(requires(*READERS)),
) -> Response:
    filters = ParticipantFilters(
        query.programme_id,
        query.wave_id,
        query.country,
        query.role.value if query.role else None,
        query.status.value if query.status else None,
        query.theme,
        query.matchable,
    )
    enrollment, page = service(request), query.page()
    # Everything the page depends on: what the caller sees, the filters, the page asked.
    key = ("participants", seen_by(who), filters, page.cursor, page.limit)
    found = await enrollment.held_reads.read(
        key, lambda: enrollment.views.participants(enrollment.pool, who, filters, page), ParticipantsPage.holdable
    )
    return page_json(Page[ParticipantOut], found.page.items, found.page.next_cursor)


@router.get(
    "/participants/{participant_id}", response_model=ParticipantOut, responses=READ_ERRORS, tags=["participants"]
)
async def get_participant(
    participant_id: UUID, request: Request, who: Principal = Depends(requires(*READERS, PARTICIPANT))
) -> Response:
    """A participant (a participant may read its own record)."""
    return await read(request, who, PARTICIPANT_, participant_id)


@router.patch(
    "/participants/{participant_id}",
    response_model=ParticipantOut,
    responses={**COMMAND_ERRORS, **problem_responses(412)},
    tags=["participants"],
)
async def update_profile(
    participant_id: UUID,
    body: ProfilePatch,
    request: Request,
    version: int | None = Depends(if_match_version),
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Change profile fields; role, country, wave and employee reference cannot change."""
    profile, personal = body.changes()
    command = commands.UpdateProfile(participant_id, profile, personal, version)
    return await execute(request, who, key, handlers.update_profile, command, PARTICIPANT_)


@router.post(
    "/participants/{participant_id}:withdraw",
    response_model=ParticipantOut,
    responses=COMMAND_ERRORS,
    tags=["participants"],
)
async def withdraw(
    participant_id: UUID,
    body: WithdrawIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS, PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Withdraw from the programme, with a reason (HR, or the participant itself)."""
    command = commands.Withdraw(participant_id, body.reason)
    return await execute(request, who, key, handlers.withdraw, command, PARTICIPANT_)


@router.post(
    "/participants/{participant_id}:transfer",
    response_model=ParticipantOut,
    responses=COMMAND_ERRORS,
    tags=["participants"],
)
async def transfer(
    participant_id: UUID,
    body: TransferIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Move a participant to another open wave of the programme, perhaps in
    another country (a committee: between its own countries; HR: any of the
    organisation's), keeping their id, profile, needs and qualification. The
    move is kept in ``transfers`` with who approved it; matching ends the
    person's open pairs (reason ``transferred``)."""
    command = commands.Transfer(participant_id, body.wave_id)
    return await execute(request, who, key, handlers.transfer, command, PARTICIPANT_)


@router.post(
    "/waves/{wave_id}/participants:transfer",
    response_model=TransferManyOut,
    responses=COMMAND_ERRORS,
    tags=["participants"],
)
async def transfer_many(
    wave_id: UUID,
    body: TransferManyIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Move these participants of the wave into another open wave of the programme, all or
    none (one ``ParticipantTransferred`` each): e.g. the wave's waitlist (matching's
    ``GET /v1/waves/{id}/waitlist``) carried over into the country's next wave, where the
    mentees keep their place in line. A participant not of this wave: 422 naming it."""
    command = commands.TransferMany(wave_id, body.to_wave_id, tuple(body.participant_ids))

    async def work(uow: UnitOfWork) -> Response:
        moved = await handlers.transfer_many(uow, who, command)
        out = TransferManyOut(from_wave_id=wave_id, to_wave_id=body.to_wave_id, transferred=moved)
        return Response(out.model_dump_json(), media_type="application/json")

    return await service(request).run(work, key=key, correlation_id=current_correlation_id())


@router.post(
    "/participants/{participant_id}:erase",
    response_model=ParticipantOut,
    responses=COMMAND_ERRORS,
    tags=["gdpr"],
)
async def erase(
    participant_id: UUID,
    request: Request,
    who: Principal = Depends(requires(HR_ADMIN)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """GDPR erasure (global HR admin): records ``ParticipantErased``, then
    shreds the person's data keys, so every personal value about them in the
    log, on the topics and in replays reads as erased; every service forgets
    them on the event. Safe to retry: a second call only shreds again."""
    response = await execute(request, who, key, handlers.erase, commands.Erase(participant_id), PARTICIPANT_)
    await service(request).forget(participant_id)
    return response


@router.post(
    "/participants/{participant_id}/needs-answers",
    response_model=ParticipantOut,
    responses=COMMAND_ERRORS,
    tags=["participants"],
)
async def answer_needs(
    participant_id: UUID,
    body: NeedsIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS, PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Answer the programme's needs questionnaire (the mentee, or HR for them); the
    answers' themes join the themes wanted."""
    command = commands.AnswerNeeds(participant_id, body.to_answers(), body.comments)
    return await execute(request, who, key, handlers.answer_needs, command, PARTICIPANT_)


@router.post(
    "/participants/{participant_id}/qualification",
    response_model=ParticipantOut,
    responses=COMMAND_ERRORS,
    tags=["participants"],
)
async def assess_qualification(
    participant_id: UUID,
    body: QualificationIn,
    request: Request,
    who: Principal = Depends(requires(*WRITERS)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Record a mentor's qualification: case study, teaching ease, interpersonal skills,
    training. The programme's rule decides whether the mentor is qualified (matchable)."""
    command = commands.AssessQualification(participant_id, body.to_scores())
    return await execute(request, who, key, handlers.assess_qualification, command, PARTICIPANT_)


# --------------------------------------------------------------------------- errors and app


def _duplicate(exc: Exception) -> Problem:
    assert isinstance(exc, DuplicateEnrolment)
    existing = str(exc.existing) if exc.existing is not None and exc.visible else None
    return Problem(
        409, detail=str(exc), type=DUPLICATE_ENROLMENT, field="body.employee_ref", existing_participant_id=existing
    )


def _import_rejected(exc: Exception) -> Problem:
    assert isinstance(exc, ImportRejected)
    return import_rejected(str(exc), exc.report.file_sha256, exc.report.rows, exc.report.errors)


EXCEPTION_MAPPINGS: dict[type[Exception], int | Callable[[Exception], Problem]] = {
    NotFound: 404,
    InvalidInput: rule_broken,
    InvalidState: lambda exc: Problem(409, detail=str(exc), type=CONFLICT),
    DuplicateEnrolment: _duplicate,
    ImportRejected: _import_rejected,
    ConcurrencyError: concurrent_change,
    DuplicateEventError: concurrent_change,
    StaleVersion: stale_version,
}


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome enrollment",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
        exception_mappings=EXCEPTION_MAPPINGS,
    )
    app.state.enrollment = enrollment = Enrollment(ctx.pool, ctx.store, ctx.vault, ctx.held_reads)
    app.include_router(router)
    app.include_router(export_router(NAME, lambda request, who, pid: enrollment.export(who, pid), EnrollmentExport))
    return app
