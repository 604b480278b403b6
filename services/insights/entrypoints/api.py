"""The insights REST API (``/v1``): read models only, never the log.

Who: ``hr_admin`` and ``service`` see the organisation, a
``regional_committee`` its countries (views.py); ``ops`` holds none of these
roles (403): it sees the metrics only. Time-dependent verdicts (pair health)
are evaluated against ``app.state.clock``, injected by tests.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from libs.api.app import create_service_app
from libs.api.held_reads import seen_by
from libs.api.pagination import Order, Page, PageParams, cursor_key, cursor_scope, cursor_values, page_params
from libs.api.problems import problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE, SERVICE, Principal
from libs.observability.health import database_check
from libs.runtime.clock import Clock
from libs.runtime.service import ServiceContext
from libs.spreadsheet import EXPORT_CONTENT, ExportFormat, export_response
from services.insights import exports, views
from services.insights.charts import MEDIA_TYPES, ImageFormat
from services.insights.entrypoints.schemas import (
    HealthRulesOut,
    NetworkOut,
    PairHealthOut,
    RolloutOut,
    SuccessFactorsOut,
)
from services.insights.factors.analysis import analyse
from services.insights.health.facts import PairScope, pair_health, pair_health_page, rules_document, set_rules
from services.insights.health.rules import NEEDS_ATTENTION, HealthRules, Status
from services.insights.network import export
from services.insights.network.graph import build, by_wave, measures, scoped
from services.insights.rollout.chart import rollout_chart
from services.insights.rollout.dashboard import Rollout, as_json, rollout

NAME = "insights"
READERS = (HR_ADMIN, REGIONAL_COMMITTEE, SERVICE)
READ_ERRORS = problem_responses(401, 403, 404, 422)

router = APIRouter(prefix="/v1", route_class=ApiRoute)


class NetworkFormat(StrEnum):
    JSON = "json"
    GRAPHML = "graphml"
    GEXF = "gexf"
    SVG = "svg"
    PNG = "png"


_NETWORK_MEDIA = {NetworkFormat.GRAPHML: "application/graphml+xml", NetworkFormat.GEXF: "application/gexf+xml"}


def schema(request: Request) -> str:
    return request.app.state.schema


def pool(request: Request):
    return request.app.state.pool


def now(request: Request) -> datetime:
    return request.app.state.clock()


# --------------------------------------------------------------------------- pair health


@router.get("/pairs/{pair_id}/health", response_model=PairHealthOut, responses=READ_ERRORS, tags=["pair health"])
async def get_pair_health(pair_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Any:
    """One pair's status and the reasons behind it, as of now."""
    scope = PairScope(who.organisation, countries=views.visible_countries(who), pair_id=pair_id)
    found = await pair_health(pool(request), schema(request), scope, now(request))
    if not found:
        raise views.not_found("pair", pair_id)
    return found[0].as_dict()


@router.get("/pair-health", response_model=Page[PairHealthOut], responses=READ_ERRORS, tags=["pair health"])
async def list_pair_health(
    request: Request,
    programme_id: UUID | None = None,
    wave_id: UUID | None = None,
    country: str | None = Query(None, min_length=2, max_length=2),
    region: str | None = Query(None, min_length=1, max_length=100),
    status: list[Status] = Query(list(NEEDS_ATTENTION), description="Statuses to list (default: at_risk, dormant)."),
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS)),
) -> Any:
    """Pairs by status (default: needing attention) in a wave, country or
    region, by pair id: a stable order, so a cursor held while statuses
    change or the read model is rebuilt neither skips nor repeats (each
    item's ``reasons`` come newest first)."""
    db, s = pool(request), schema(request)
    countries = views.narrowed(who, country)
    await views.check_wave(db, s, who, wave_id)
    scope = PairScope(who.organisation, programme_id, wave_id, countries, region)
    wanted = set(status)
    filters = cursor_scope(p=programme_id, w=wave_id, c=countries, r=region, s=sorted(wanted))
    after = page.after(filters)
    (after_id,) = (None,) if after is None else cursor_values(after, PAIR_HEALTH_ORDER)
    found = await pair_health_page(db, s, scope, now(request), wanted, after_id, page.limit)
    return Page.of(
        found, page.limit, filters, key=lambda h: cursor_key(h.row, PAIR_HEALTH_ORDER), item=lambda h: h.as_dict()
    )


#: Pair health lists page by pair id (``pair_health_page``).
PAIR_HEALTH_ORDER: Order = (("pair_id", UUID),)


@router.get(
    "/programmes/{programme_id}/health-rules", response_model=HealthRulesOut, responses=READ_ERRORS, tags=["pair health"]
)
async def get_health_rules(programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Any:
    db, s = pool(request), schema(request)
    await views.programme(db, s, who, programme_id)
    return await rules_document(db, s, programme_id)


@router.put(
    "/programmes/{programme_id}/health-rules",
    response_model=HealthRulesOut,
    responses=problem_responses(401, 403, 404, 422),
    tags=["pair health"],
)
async def put_health_rules(
    programme_id: UUID, body: HealthRules, request: Request, who: Principal = Depends(requires(HR_ADMIN))
) -> Any:
    """Set the programme's thresholds (global HR admin); omitted ones take the defaults."""
    db, s = pool(request), schema(request)
    await views.programme(db, s, who, programme_id)
    await set_rules(db, s, programme_id, who.organisation, body.model_dump(exclude_unset=True), now(request), who.subject)
    return await rules_document(db, s, programme_id)


# --------------------------------------------------------------------------- network


@router.get(
    "/programmes/{programme_id}/network",
    response_model=NetworkOut,
    response_model_exclude_unset=True,
    responses={**READ_ERRORS, 200: {"content": {"image/svg+xml": {}, "image/png": {},
                                                "application/graphml+xml": {}, "application/gexf+xml": {}}}},
    tags=["network"],
)
async def get_network(
    programme_id: UUID,
    request: Request,
    format: NetworkFormat = NetworkFormat.JSON,  # noqa: A002 - the query parameter's name
    wave_id: UUID | None = None,
    who: Principal = Depends(requires(*READERS)),
) -> Any:
    """The cross-silo network: JSON (graph, measures, wave by wave), GraphML
    or GEXF (Gephi), or a picture (SVG, PNG). A committee sees people outside
    its countries as one ``(other countries)`` group per dimension."""
    db, s = pool(request), schema(request)
    prog = await views.programme(db, s, who, programme_id)
    await views.check_wave(db, s, who, wave_id)
    countries = views.visible_countries(who)
    pairs, enrolled, waves = await views.network_inputs(db, s, who.organisation, programme_id, wave_id, countries)
    visible = (lambda c: True) if countries is None else (lambda c: c in countries)
    shown = scoped(pairs, visible)
    graph = build(shown, enrolled)
    graph.graph["programme"] = prog["name"]
    if format is NetworkFormat.GRAPHML or format is NetworkFormat.GEXF:
        data = export.graphml(graph) if format is NetworkFormat.GRAPHML else export.gexf(graph)
        return Response(data, media_type=_NETWORK_MEDIA[format])
    if format is NetworkFormat.JSON:
        return {**export.as_json(graph), "measures": measures(graph, shown), "waves": by_wave(shown, waves)}
    image = ImageFormat(format.value)
    return Response(export.picture(graph, image, f"{prog['name']}: cross-silo network"), media_type=MEDIA_TYPES[image])


# --------------------------------------------------------------------------- rollout


async def _rollout(request: Request, who: Principal, programme_id: UUID) -> Rollout:
    countries = views.visible_countries(who)
    # Held per what the caller sees and programme: everything the dashboard depends on.
    found = await request.app.state.held_reads.read(
        ("rollout", seen_by(who), programme_id),
        lambda: rollout(pool(request), schema(request), who.organisation, programme_id, countries),
        lambda found: found is not None,
    )
    if found is None:
        raise views.not_found("programme", programme_id)
    return found


@router.get(
    "/programmes/{programme_id}/rollout",
    response_model=RolloutOut,  # the documented answer; as_json builds exactly its bytes
    responses=READ_ERRORS,
    tags=["rollout"],
)
async def get_rollout(programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Any:
    """Counts per programme, region, country and wave (a committee: its countries). The
    mentees' digital-maturity change has two figures: ``maturity_change_of_means_percent`` and
    ``maturity_mean_pair_change_percent``; ``maturity_delta_percent`` is the deprecated older name
    of the latter (the same value)."""
    found = await _rollout(request, who, programme_id)
    return Response(as_json(programme_id, found), media_type="application/json")


@router.get(
    "/programmes/{programme_id}/rollout/chart",
    response_class=Response,
    responses={**READ_ERRORS, 200: {"content": {"image/svg+xml": {}, "image/png": {}}}},
    tags=["rollout"],
)
async def get_rollout_chart(
    programme_id: UUID,
    request: Request,
    format: ImageFormat = ImageFormat.SVG,  # noqa: A002
    who: Principal = Depends(requires(*READERS)),
) -> Response:
    """Pairs per country (active, completed, dissolved) against the target."""
    found = await _rollout(request, who, programme_id)
    chart = rollout_chart(found.levels["country"], format, f"{found.programme_name}: rollout by country")
    return Response(chart, media_type=MEDIA_TYPES[format])


# --------------------------------------------------------------------------- success factors


@router.get(
    "/programmes/{programme_id}/success-factors",
    response_model=SuccessFactorsOut,
    response_model_exclude_unset=True,  # a suppressed comparison holds only suppressed and reason
    responses=READ_ERRORS,
    tags=["success factors"],
)
async def get_success_factors(
    programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))
) -> Any:
    """Which pair attributes go with success, with effect sizes and 95 %
    intervals; comparisons with a group under the anonymity threshold are
    suppressed."""
    db, s = pool(request), schema(request)
    await views.programme(db, s, who, programme_id)
    k = await views.k_anonymity(db, s, programme_id)
    outcomes = await views.pair_outcomes(db, s, who.organisation, programme_id, views.visible_countries(who))
    analysis = analyse(outcomes, k)
    return {"programme_id": programme_id, "k_anonymity": k, "pairs": analysis.pairs, "factors": analysis.factors}


# --------------------------------------------------------------------------- spreadsheet exports


@router.get(
    "/programmes/{programme_id}/exports/{dataset}",
    responses={**READ_ERRORS, **EXPORT_CONTENT},
    response_class=Response,
    tags=["exports"],
)
async def get_export(
    programme_id: UUID,
    dataset: exports.Dataset,
    request: Request,
    format: ExportFormat = ExportFormat.CSV,  # noqa: A002 - the query parameter's name
    wave_id: UUID | None = None,
    country: str | None = Query(None, min_length=2, max_length=2),
    who: Principal = Depends(requires(*READERS)),
) -> Response:
    """A spreadsheet (CSV or XLSX, a header row, typed columns) of the
    rollout dashboard, the pairs with their health, the participants
    (matchable profile, no personal data) or the survey results (per wave,
    survey and phase; mean scores under the anonymity threshold left empty),
    in the caller's countries. Streamed as it is read."""
    db, s = pool(request), schema(request)
    await views.programme(db, s, who, programme_id)
    await views.check_wave(db, s, who, wave_id)
    countries = views.narrowed(who, country)
    source = await exports.rows(
        dataset, db, s, organisation=who.organisation, programme_id=programme_id, wave_id=wave_id,
        countries=countries, k_anonymity=await views.k_anonymity(db, s, programme_id), now=now(request),
    )
    return export_response(format, exports.COLUMNS[dataset], source, f"{dataset.value}-{programme_id}")


# --------------------------------------------------------------------------- app


def create_app(ctx: ServiceContext, *, clock: Clock | None = None) -> FastAPI:
    app = create_service_app(
        NAME, title="Binome insights", version="1", verifier=ctx.verifier, readiness_checks={"database": database_check(ctx.pool)}
    )
    app.state.pool = ctx.pool
    app.state.schema = ctx.store.schema
    app.state.held_reads = ctx.held_reads  # the rollout dashboard (libs/api/held_reads.py)
    app.state.clock = clock or ctx.clock  # a test's clock, else the platform's
    app.include_router(router)
    return app
