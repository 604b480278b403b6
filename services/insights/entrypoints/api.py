"""The insights REST API (``/v1``): read models only, never the log.

Who: ``hr_admin`` and ``service`` see the organisation, a
``regional_committee`` its countries (views.py); ``ops`` holds none of these
roles (403): it sees the metrics only. Time-dependent verdicts (pair health)
are evaluated against ``app.state.clock``, injected by tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from libs.api.app import create_service_app
from libs.api.pagination import Page, PageParams, cursor_scope, page_params
from libs.api.problems import problem_responses
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE, SERVICE, Principal
from libs.observability.health import database_check
from libs.runtime.clock import Clock
from libs.runtime.service import ServiceContext
from services.insights import views
from services.insights.charts import MEDIA_TYPES, ImageFormat
from services.insights.factors.analysis import analyse
from services.insights.health.facts import PairScope, pair_health, rules_for
from services.insights.health.rules import NEEDS_ATTENTION, HealthRules, Status
from services.insights.network import export
from services.insights.network.graph import build, by_wave, measures, scoped
from services.insights.rollout.chart import rollout_chart
from services.insights.rollout.dashboard import dashboard

NAME = "insights"
READERS = (HR_ADMIN, REGIONAL_COMMITTEE, SERVICE)
READ_ERRORS = problem_responses(401, 403, 404, 422)

router = APIRouter(prefix="/v1")


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


def _json(body: Any) -> Response:
    # orjson writes datetimes and UUIDs as strings; asyncpg's own UUID type
    # is not one it knows, hence ``default=str``.
    return Response(orjson.dumps(body, default=str), media_type="application/json")


# --------------------------------------------------------------------------- pair health


@router.get("/pairs/{pair_id}/health", responses=READ_ERRORS, tags=["pair health"])
async def get_pair_health(pair_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    """One pair's status and the reasons behind it, as of now."""
    scope = PairScope(who.organisation, countries=views.visible_countries(who), pair_id=pair_id)
    found = await pair_health(pool(request), schema(request), scope, now(request))
    if not found:
        raise views.not_found("pair", pair_id)
    return _json(found[0].as_dict())


@router.get("/pair-health", response_model=Page[dict], responses=READ_ERRORS, tags=["pair health"])
async def list_pair_health(
    request: Request,
    programme_id: UUID | None = None,
    wave_id: UUID | None = None,
    country: str | None = Query(None, min_length=2, max_length=2),
    region: str | None = Query(None, min_length=1, max_length=100),
    status: list[Status] = Query(list(NEEDS_ATTENTION), description="Statuses to list (default: at_risk, dormant)."),
    page: PageParams = Depends(page_params),
    who: Principal = Depends(requires(*READERS)),
) -> Response:
    """Pairs by status (default: needing attention) in a wave, country or
    region, the newest reason first."""
    db, s = pool(request), schema(request)
    countries = views.narrowed(who, country)
    await views.check_wave(db, s, who, wave_id)
    scope = PairScope(who.organisation, programme_id, wave_id, countries, region)
    wanted = set(status)
    listed = [h for h in await pair_health(db, s, scope, now(request)) if h.verdict.status in wanted]

    def key(h) -> list[str]:
        at = h.verdict.newest_reason_at or h.row["formed_at"]
        return [at.astimezone(UTC).isoformat(), str(h.row["pair_id"])]

    listed.sort(key=key, reverse=True)
    filters = cursor_scope(p=programme_id, w=wave_id, c=countries, r=region, s=sorted(wanted))
    after = page.after(filters)
    if after is not None:
        listed = [h for h in listed if key(h) < after]
    result = Page.of(listed[: page.limit + 1], page.limit, filters, key=key, item=lambda h: h.as_dict())
    return _json(result.model_dump())


@router.get("/programmes/{programme_id}/health-rules", responses=READ_ERRORS, tags=["pair health"])
async def get_health_rules(programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    db, s = pool(request), schema(request)
    await views.programme(db, s, who, programme_id)
    row = await db.fetchrow(f"SELECT rules::text, updated_at, updated_by FROM {s}.health_rules WHERE programme_id = $1", programme_id)
    effective = (await rules_for(db, s, {programme_id}))[programme_id]
    return _json({
        "programme_id": programme_id,
        "defaults": HealthRules().model_dump(),
        "overrides": orjson.loads(row["rules"]) if row else {},
        "effective": effective.model_dump(),
        "updated_at": row["updated_at"] if row else None,
        "updated_by": row["updated_by"] if row else None,
    })


@router.put("/programmes/{programme_id}/health-rules", responses=problem_responses(401, 403, 404, 422), tags=["pair health"])
async def put_health_rules(
    programme_id: UUID, body: HealthRules, request: Request, who: Principal = Depends(requires(HR_ADMIN))
) -> Response:
    """Set the programme's thresholds (global HR admin); omitted ones take the defaults."""
    db, s = pool(request), schema(request)
    await views.programme(db, s, who, programme_id)
    overrides = body.model_dump(exclude_unset=True)
    await db.execute(
        f"""INSERT INTO {s}.health_rules (programme_id, organisation, rules, updated_at, updated_by)
            VALUES ($1, $2, $3::jsonb, $4, $5)
            ON CONFLICT (programme_id) DO UPDATE SET rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at,
                updated_by = EXCLUDED.updated_by""",
        programme_id, who.organisation, orjson.dumps(overrides).decode(), now(request), who.subject,
    )
    return await get_health_rules(programme_id, request, who)


# --------------------------------------------------------------------------- network


@router.get(
    "/programmes/{programme_id}/network",
    responses={**READ_ERRORS, 200: {"content": {"application/json": {}, "image/svg+xml": {}, "image/png": {},
                                                "application/graphml+xml": {}, "application/gexf+xml": {}}}},
    tags=["network"],
)
async def get_network(
    programme_id: UUID,
    request: Request,
    format: NetworkFormat = NetworkFormat.JSON,  # noqa: A002 - the query parameter's name
    wave_id: UUID | None = None,
    who: Principal = Depends(requires(*READERS)),
) -> Response:
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
        return _json({**export.as_json(graph), "measures": measures(graph, shown), "waves": by_wave(shown, waves)})
    image = ImageFormat(format.value)
    return Response(export.picture(graph, image, f"{prog['name']}: cross-silo network"), media_type=MEDIA_TYPES[image])


# --------------------------------------------------------------------------- rollout


async def _rollout(request: Request, who: Principal, programme_id: UUID) -> tuple[dict, dict]:
    db, s = pool(request), schema(request)
    prog = await views.programme(db, s, who, programme_id)
    k = await views.k_anonymity(db, s, programme_id)
    levels = await dashboard(db, s, who.organisation, programme_id, views.visible_countries(who), k)
    return prog, {"programme_id": programme_id, "k_anonymity": k, **levels}


@router.get("/programmes/{programme_id}/rollout", responses=READ_ERRORS, tags=["rollout"])
async def get_rollout(programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))) -> Response:
    """Counts per programme, region, country and wave (a committee: its countries)."""
    _, body = await _rollout(request, who, programme_id)
    return _json(body)


@router.get(
    "/programmes/{programme_id}/rollout/chart",
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
    prog, body = await _rollout(request, who, programme_id)
    chart = rollout_chart(body["country"], format, f"{prog['name']}: rollout by country")
    return Response(chart, media_type=MEDIA_TYPES[format])


# --------------------------------------------------------------------------- success factors


@router.get("/programmes/{programme_id}/success-factors", responses=READ_ERRORS, tags=["success factors"])
async def get_success_factors(
    programme_id: UUID, request: Request, who: Principal = Depends(requires(*READERS))
) -> Response:
    """Which pair attributes go with success, with effect sizes and 95 %
    intervals; comparisons with a group under the anonymity threshold are
    suppressed."""
    db, s = pool(request), schema(request)
    await views.programme(db, s, who, programme_id)
    k = await views.k_anonymity(db, s, programme_id)
    outcomes = await views.pair_outcomes(db, s, who.organisation, programme_id, views.visible_countries(who))
    analysis = analyse(outcomes, k)
    return _json({"programme_id": programme_id, "k_anonymity": k, "pairs": analysis.pairs, "factors": analysis.factors})


# --------------------------------------------------------------------------- app


def create_app(ctx: ServiceContext, *, clock: Clock | None = None) -> FastAPI:
    app = create_service_app(
        NAME, title="Binome insights", version="1", verifier=ctx.verifier, readiness_checks={"database": database_check(ctx.pool)}
    )
    app.state.pool = ctx.pool
    app.state.schema = ctx.store.schema
    app.state.clock = clock or ctx.clock  # a test's clock, else the platform's
    app.include_router(router)
    return app
