"""The route index (libs/api/route_index.py) chooses the route FastAPI's own
dispatch chooses, for every route of every service and of the platform's
root app, and hands it the request as FastAPI does."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import _IncludedRouter
from starlette.routing import Match

from libs.api.app import create_service_app
from libs.api.route_index import RouteIndex, _Included, _Top
from libs.api.routes import ApiRoute, api_routes
from libs.auth.tokens import TokenVerifier
from tests.support.openapi_matrix import _apps

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
AN_ID = "00000000-0000-4000-8000-000000000000"
#: Paths no route template names: near misses of real ones.
ODD_PATHS = (
    "/", "", "/v1", "/v1/", "/healthz", "/healthz/", "/readyz", "/metrics", "/docs", "/openapi.json",
    "/v1/unknown", f"/v1/waves/{AN_ID}:close-enrolment", f"/v1/waves/{AN_ID}:nothing", f"/v1/waves/{AN_ID}/",
    f"/v1/pairs/{AN_ID}/extra/segments", "/v1/participants/", "/v1/participants:import", "/v2/Users/.search",
    f"/v2/Users/{AN_ID}", "//v1/pairs", "/v1//pairs", "/%2e%2e/v1",
)  # fmt: skip


@cache
def apps() -> dict[str, FastAPI]:
    return _apps()


def verifier() -> TokenVerifier:
    return apps()["enrollment"].state.token_verifier


def scope_for(method: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": root_path + path, "root_path": root_path, "headers": []}


def fastapi_choice(app: FastAPI, scope: dict[str, Any]) -> Any:
    """What FastAPI's router hands the request to (a route, or an included
    route's context), or None: its own loop over the routes."""
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is not Match.FULL:
            continue
        while isinstance(route, _IncludedRouter):
            _, _, chosen, context = route._match(scope)
            if context is not None:
                return context
            route = chosen
        return route
    return None


def index_choice(app: FastAPI, scope: dict[str, Any]) -> Any:
    index = RouteIndex(app.router)._current()
    path = scope["path"][len(scope["root_path"]) :]
    for candidate in index.candidates(path) if path.startswith("/") else ():
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return candidate.context if isinstance(candidate, _Included) else candidate.route
    return None


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", AN_ID, template)


def paths_of(app: FastAPI) -> list[str]:
    templates = {template for template, _ in api_routes(app.routes)}
    templates |= {getattr(route, "path_format", "/") for route in app.routes}
    return sorted({concrete(t) for t in templates} | set(ODD_PATHS))


def test_every_service_route_is_chosen_as_fastapi_chooses_it() -> None:
    checked, differ = 0, []
    for name, app in apps().items():
        for path in paths_of(app):
            for method in METHODS:
                for root_path in ("", f"/{name}"):
                    scope = scope_for(method, path, root_path)
                    expected = fastapi_choice(app, scope)
                    checked += expected is not None
                    if index_choice(app, scope) is not expected:
                        differ.append((name, method, root_path, path))
    assert differ == []
    assert checked > 300  # every route of every service, not a vacuous loop


def test_the_platforms_mounts_are_chosen_as_fastapi_chooses_them() -> None:
    root = create_service_app("platform", title="t", version="1", verifier=verifier())
    for name, app in apps().items():
        root.mount(f"/{name}", app)
    root.mount("/scim", apps()["directory"])

    @root.get("/v1/services")
    async def services() -> dict[str, str]:
        return {}

    differ, mounts = [], 0
    for name, app in apps().items():
        for path in [f"/{name}{p}" for p in paths_of(app)] + ["/scim/v2/Users", "/v1/services", "/nothing/v1/x"]:
            for method in ("GET", "POST"):
                scope = scope_for(method, path)
                expected = fastapi_choice(root, scope)
                mounts += expected is not None and getattr(expected, "app", None) is app
                if index_choice(root, scope) is not expected:
                    differ.append((method, path))
    assert differ == []
    assert mounts > 100


def test_the_index_sees_a_route_added_after_the_first_request() -> None:
    router = APIRouter(route_class=ApiRoute)
    app = create_service_app("t", title="t", version="1", verifier=verifier())
    app.include_router(router, prefix="/v1")
    index = RouteIndex(app.router)
    assert index._current().candidates("/v1/late") == []

    @router.get("/late")
    async def late() -> dict[str, str]:
        return {}

    (candidate,) = index._current().candidates("/v1/late")
    assert candidate.context.path_format == "/v1/late"


def app_with_nested_routers() -> FastAPI:
    """Routers within routers, a router-level dependency and path parameters:
    each answer names the route and what the request saw of it."""
    app = create_service_app("t", title="t", version="1", verifier=verifier())
    seen: list[str] = []

    async def router_dependency(request: Request) -> None:
        seen.append(request.url.path)

    def described(request: Request) -> dict[str, Any]:
        fastapi_state = request.scope.get("fastapi", {})
        return {
            "route": request.scope["route"].path_format,
            "endpoint": request.scope["endpoint"].__name__,
            "path_params": request.path_params,
            "effective": fastapi_state["effective_route_context"].path_format,
            "router_dependency_ran": seen[-1] == request.url.path,
            "router": type(request.scope["router"]).__name__,
        }

    inner = APIRouter(route_class=ApiRoute)

    @inner.get("/pairs/{pair_id}")
    async def get_pair(pair_id: str, request: Request) -> dict[str, Any]:
        return described(request)

    @inner.post("/pairs/{pair_id}:accept")
    async def accept_pair(pair_id: str, request: Request) -> dict[str, Any]:
        return described(request)

    outer = APIRouter(route_class=ApiRoute)

    @outer.get("/waves")
    async def list_waves(request: Request) -> dict[str, Any]:
        return described(request)

    outer.include_router(inner, prefix="/matching")
    app.include_router(outer, prefix="/v1", dependencies=[Depends(router_dependency)])
    return app


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/waves"), ("GET", "/v1/matching/pairs/p1"), ("POST", "/v1/matching/pairs/p1:accept"),
     ("GET", "/v1/matching/pairs/p1:accept"), ("DELETE", "/v1/waves"), ("GET", "/v1/waves/"), ("GET", "/v1/none"),
     ("GET", "/healthz"), ("GET", "/openapi.json")],
)  # fmt: skip
async def test_a_request_is_answered_as_fastapi_answers_it(method: str, path: str) -> None:
    answers = []
    for indexed in (True, False):
        app = app_with_nested_routers()
        if not indexed:  # FastAPI's own dispatch
            app.router.middleware_stack = app.router.app
        assert isinstance(app.router.middleware_stack, RouteIndex) is indexed
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.request(method, path)
        answers.append((response.status_code, response.headers.get("allow"), response.headers.get("location"),
                        response.content if path != "/openapi.json" else b""))  # fmt: skip
    assert answers[0] == answers[1]


def test_the_index_hands_ops_routes_and_mounts_over_as_the_router_does() -> None:
    app = app_with_nested_routers()
    index = RouteIndex(app.router)._current()
    assert all(isinstance(c, _Top) for c in index.candidates("/healthz"))
    assert [type(c).__name__ for c in index.candidates("/v1/matching/pairs/x")] == ["_Included", "_Included"]
