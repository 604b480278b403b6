"""The evaluation REST API (``/v1``): templates, settings, assignments,
answers, reminders and results.

Every command runs in one transaction (``Evaluation.run``): the events, the
read tables and the ``Idempotency-Key``'s stored response commit together.

Who may call what: the roles in each route's ``requires``; then, on the
object, the rules of ``service_layer.views`` (another country's or
organisation's object is a 404). ``ops`` holds none of these roles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from libs.api.app import create_service_app
from libs.api.commands import concurrent_change, rule_broken
from libs.api.idempotency import IdempotencyKey, idempotency_key
from libs.api.pagination import Page, PageParams, page_params
from libs import tabular
from libs.api.responses import model_json
from libs.api.problems import Problem, import_rejected, problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, SERVICE, Principal
from libs.domain.repository import UnitOfWork
from libs.events.contexts.evaluation import SurveyKind
from libs.eventstore.store import ConcurrencyError, DuplicateEventError
from libs.gdpr.export import export_router
from libs.observability.correlation import current_correlation_id
from libs.observability.health import database_check
from libs.runtime.service import ServiceContext
from services.evaluation.bootstrap import Clock, Evaluation
from services.evaluation.domain.errors import Conflict, InvalidInput, NotFound
from services.evaluation.adapters.references import References
from services.evaluation.domain.language import survey_language
from services.evaluation.domain.templates import Template
from services.evaluation.entrypoints.schemas import (
    AnswersImportOut,
    AnswersIn,
    AssignmentOut,
    PairMaturityOut,
    RemindedOut,
    ResultsOut,
    SettingsIn,
    SettingsOut,
    TemplateOut,
    TemplateVersionIn,
)
from services.evaluation.service_layer import handlers, importing
from services.evaluation.service_layer.export import EvaluationExport, Export
from services.evaluation.service_layer.views import AssignmentFilters

NAME = "evaluation"
READERS = (HR_ADMIN, REGIONAL_COMMITTEE, SERVICE)
COMMAND_ERRORS = problem_responses(401, 403, 404, 409, 422)
READ_ERRORS = problem_responses(401, 403, 404, 422)
CONFLICT = "urn:binome:problem:conflict"

router = APIRouter(prefix="/v1", route_class=ApiRoute)


def service(request: Request) -> Evaluation:
    return request.app.state.evaluation


def respond(model: type, doc: dict[str, Any], status: int = 200) -> Response:
    return model_json(model, doc, status)


async def command(
    request: Request,
    key: IdempotencyKey | None,
    work: Callable[[UnitOfWork], Awaitable[Response]],
) -> Response:
    return await service(request).run(work, key=key, correlation_id=current_correlation_id())


async def assignment_with_survey(
    uow: UnitOfWork, references: References, principal: Principal, assignment_id: UUID, now: datetime
) -> dict[str, Any]:
    """The assignment and the questions of the template version it pins, with
    the language to show them in for its participant."""
    doc = await uow.views.assignment(uow.conn, principal, assignment_id, now)
    template = await uow.repo.get(Template, UUID(doc["template_id"]))
    assert template is not None
    version = template.at(doc["template_version"])
    spoken = await references.participant_languages(uow.conn, UUID(doc["participant_id"]))
    language, source = survey_language(spoken, version.languages)
    doc["survey"] = {
        "title": version.title,
        "languages": version.languages,
        "questions": version.questions,
        "language": language,
        "language_source": source,
    }
    return doc


# --------------------------------------------------------------------------- templates and settings


@router.get(
    "/programmes/{programme_id}/templates", response_model=list[TemplateOut], responses=READ_ERRORS,
    tags=["templates"],
)
async def list_templates(
    programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))
) -> list[dict[str, Any]]:
    """The programme's survey templates, each at its current version."""
    return await service(request).views.templates(service(request).pool, who, programme_id)


@router.get("/templates/{template_id}", response_model=TemplateOut, responses=READ_ERRORS, tags=["templates"])
async def get_template(
    template_id: UUID,
    request: Request,
    version: int | None = Query(None, ge=1, description="A past version (default: the current one)."),
    who: Principal = Depends(requires(*READERS)),
) -> Any:
    evaluation = service(request)
    async with evaluation.pool.acquire() as conn:
        if version is None:
            return await evaluation.views.template(conn, who, template_id)
        template = await handlers.load_template(evaluation.unit_of_work(conn), who, template_id)
        if version > template.version:
            raise NotFound("template version", version)
        return template.at(version).model_dump(mode="json", exclude={"actor"})


@router.post(
    "/templates/{template_id}/versions", status_code=201, response_model=TemplateOut, responses=COMMAND_ERRORS,
    tags=["templates"],
)
async def publish_template_version(
    template_id: UUID,
    body: TemplateVersionIn,
    request: Request,
    who: Principal = Depends(requires(HR_ADMIN)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Publish the next version of a template: every question and option text in each of the
    programme's languages. Assignments made before keep the version they were made with."""
    questions = [q.to_question() for q in body.questions]

    async def work(uow: UnitOfWork) -> Response:
        await handlers.publish_template(uow, who, template_id, body.title, questions)
        return respond(TemplateOut, await uow.views.template(uow.conn, who, template_id), 201)

    return await command(request, key, work)


@router.get(
    "/programmes/{programme_id}/evaluation-settings", response_model=SettingsOut, responses=READ_ERRORS,
    tags=["settings"],
)
async def get_settings(programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Any:
    return await service(request).views.settings(service(request).pool, who, programme_id)


@router.put(
    "/programmes/{programme_id}/evaluation-settings", response_model=SettingsOut, responses=COMMAND_ERRORS,
    tags=["settings"],
)
async def change_settings(
    programme_id: UUID,
    body: SettingsIn,
    request: Request,
    who: Principal = Depends(requires(HR_ADMIN)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Set k, the smallest group whose aggregates are shown (default 5, never below 3)."""

    async def work(uow: UnitOfWork) -> Response:
        await handlers.change_settings(uow, who, programme_id, body.k_anonymity)
        return respond(SettingsOut, await uow.views.settings(uow.conn, who, programme_id))

    return await command(request, key, work)


# --------------------------------------------------------------------------- assignments


@router.get("/assignments", response_model=Page[AssignmentOut], responses=READ_ERRORS, tags=["assignments"])
async def list_assignments(
    request: Request,
    programme_id: UUID | None = None,
    wave_id: UUID | None = None,
    pair_id: UUID | None = None,
    participant_id: UUID | None = None,
    country: str | None = Query(None, pattern=r"^[A-Za-z]{2}$"),
    kind: SurveyKind | None = None,
    status: Literal["open", "answered", "cancelled"] | None = None,
    overdue: bool | None = Query(None, description="true: open assignments past their due date."),
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS, PARTICIPANT)),
) -> Page[Any]:
    """Assignments the caller may see (a participant: its own)."""
    filters = AssignmentFilters(
        programme_id, wave_id, pair_id, participant_id, country, kind.value if kind else None, status, overdue
    )
    evaluation = service(request)
    return await evaluation.views.assignments(evaluation.pool, who, filters, page, evaluation.clock())


@router.get(
    "/assignments/{assignment_id}", response_model=AssignmentOut, responses=READ_ERRORS, tags=["assignments"]
)
async def get_assignment(
    assignment_id: UUID, request: Request, who: Principal = Depends(requires(*READERS, PARTICIPANT))
) -> Response:
    """An assignment with the questions of its template version (a participant: its own)."""
    evaluation = service(request)
    async with evaluation.pool.acquire() as conn:
        doc = await assignment_with_survey(
            evaluation.unit_of_work(conn), evaluation.references, who, assignment_id, evaluation.clock()
        )
        return respond(AssignmentOut, doc)


@router.post(
    "/assignments/{assignment_id}/answers", response_model=AssignmentOut, responses=COMMAND_ERRORS,
    tags=["assignments"],
)
async def answer(
    assignment_id: UUID,
    body: AnswersIn,
    request: Request,
    who: Principal = Depends(requires(PARTICIPANT)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Answer an assignment: only its participant, only once (a second answer is a 409)."""
    evaluation = service(request)
    now = evaluation.clock()

    async def work(uow: UnitOfWork) -> Response:
        await handlers.answer(uow, who, assignment_id, body.answers, body.action_list())
        doc = await assignment_with_survey(uow, evaluation.references, who, assignment_id, now)
        return respond(AssignmentOut, doc)

    return await command(request, key, work)


@router.post("/assignments:remind-overdue", response_model=RemindedOut, responses=COMMAND_ERRORS, tags=["assignments"])
async def remind_overdue(
    request: Request,
    who: Principal = Depends(requires(HR_ADMIN, REGIONAL_COMMITTEE)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Record a reminder for every overdue assignment of the caller's countries (at most one a
    week per assignment); the reminder events are what notification senders consume."""
    now = service(request).clock()

    async def work(uow: UnitOfWork) -> Response:
        reminded = await handlers.remind_overdue(uow, who, now)
        return respond(RemindedOut, {"reminded": reminded})

    return await command(request, key, work)


# --------------------------------------------------------------------------- results


@router.get("/pairs/{pair_id}/maturity", response_model=PairMaturityOut, responses=READ_ERRORS, tags=["results"])
async def pair_maturity(pair_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Any:
    """The mentee's digital maturity before and after, and the change."""
    return await service(request).views.pair_maturity(service(request).pool, who, pair_id)


@router.get(
    "/programmes/{programme_id}/results", response_model=ResultsOut, responses=READ_ERRORS, tags=["results"]
)
async def results(
    programme_id: UUID,
    request: Request,
    group_by: Literal["programme", "wave", "country", "region"] = "programme",
    wave_id: UUID | None = None,
    country: str | None = Query(None, pattern=r"^[A-Za-z]{2}$"),
    who: Principal = Depends(requires(*READERS)),
) -> Any:
    """Averages, the paired maturity change of the means in percent, response rates and committed actions per
    group; figures from fewer than k respondents are withheld; free text never appears."""
    return await service(request).views.results(service(request).pool, who, programme_id, group_by, wave_id, country)


MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.post(
    "/templates/{template_id}/answers:import",
    response_model=AnswersImportOut,
    responses={**COMMAND_ERRORS, **problem_responses(413, 415)},
    tags=["assignments"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_answers(
    template_id: UUID,
    request: Request,
    mode: Literal["all_or_nothing", "valid_only"] = "all_or_nothing",
    who: Principal = Depends(requires(HR_ADMIN, REGIONAL_COMMITTEE)),
    key: IdempotencyKey | None = Depends(idempotency_key),
) -> Response:
    """Import answers to this survey collected elsewhere, from CSV or XLSX: a column
    ``assignment_id`` and one per question (a scale 1-5, an option code, codes as ``a|b``, text).
    Every row is checked first; with a bad row nothing is imported (422 listing each bad row's
    line and column) unless ``mode=valid_only``. Each answer is its own SurveyAnswered, recorded
    by the importing HR person. A row naming an assignment the caller may not see (another
    country's) or none: 404 naming the row's line, nothing written."""
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise Problem(413, detail=f"An import file holds at most {MAX_IMPORT_BYTES // (1024 * 1024)} MiB.")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("text/csv", "application/csv", XLSX):
        raise Problem(415, detail=f"Send text/csv or {XLSX}.")

    async def work(uow: UnitOfWork) -> Response:
        template = await handlers.load_template(uow, who, template_id)
        columns, lists = importing.columns_of(template)
        try:
            if media_type == XLSX:
                table = tabular.read_xlsx(body, columns=columns, list_columns=lists)
            else:
                table = tabular.read_csv(body, columns=columns, list_columns=lists)
        except tabular.UnreadableFile as exc:
            raise exc.problem() from None
        if len(table.rows) + len(table.bad_rows) > MAX_IMPORT_ROWS:
            raise Problem(413, detail=f"An import holds at most {MAX_IMPORT_ROWS} rows; split the file.")
        cmd = importing.AnswersImport(template_id, hashlib.sha256(body).hexdigest(), table, mode == "valid_only")
        report = await importing.import_answers(uow, who, cmd)
        return respond(AnswersImportOut, {**vars(report), "errors": [vars(e) for e in report.errors]})

    return await command(request, key, work)


# --------------------------------------------------------------------------- errors and app


def _import_rejected(exc: Exception) -> Problem:
    assert isinstance(exc, importing.AnswersImportRejected)
    return import_rejected(str(exc), exc.report.file_sha256, exc.report.rows, exc.report.errors)


EXCEPTION_MAPPINGS: dict[type[Exception], int | Callable[[Exception], Problem]] = {
    importing.AnswersImportRejected: _import_rejected,
    NotFound: 404,
    InvalidInput: rule_broken,
    Conflict: lambda exc: Problem(409, detail=str(exc), type=CONFLICT),
    ConcurrencyError: concurrent_change,
    DuplicateEventError: concurrent_change,
}


def create_app(ctx: ServiceContext, clock: Clock | None = None) -> FastAPI:
    app = create_service_app(
        NAME,
        title="Binome evaluation",
        version="1",
        verifier=ctx.verifier,
        readiness_checks={"database": database_check(ctx.pool)},
        exception_mappings=EXCEPTION_MAPPINGS,
    )
    app.state.evaluation = Evaluation(ctx.pool, ctx.store, clock or ctx.clock)  # a test's clock, else the platform's
    app.include_router(router)
    part = Export(ctx.store.schema)
    app.include_router(
        export_router(NAME, lambda request, who, pid: part.collect(ctx.pool, who, pid), EvaluationExport)
    )
    return app
