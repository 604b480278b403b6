"""A router's routes indexed by their leading path segments (``RouteIndex``).

FastAPI's router tries its routes in turn, each a regular expression, and an
included router (``app.include_router(router, prefix="/v1")``, kept as one
route holding the original router) is matched twice: once to choose it, once
more to choose its route. A service has a few dozen routes, the platform
mounts the services one after the other: a read ran about 30 matches before
its endpoint. ``RouteIndex`` runs instead of the router's own dispatch and
tries only the routes that can match the request's path: those whose first
two path segments are literal and equal the request's, those whose first
segment is literal and equal (a mount: ``/matching/{path}``), and those
without literal segments (none here).

The answer is FastAPI's: the candidates keep the router's order and the
first full match wins, as in the router; a route the index leaves out could
not have matched (its literal segments differ). A match is handed to the
route exactly as FastAPI hands it (the same scope keys, the route's own
``handle``). Whatever is not a full match (a 404, a 405 and its ``Allow``,
a redirect for a trailing slash, FastAPI's telemetry, a route kind the index
does not know) goes through the router's own dispatch, unchanged.

It reads FastAPI's included-router internals (``_IncludedRouter``, its
effective route contexts, the routes' version); ``fastapi`` is pinned, and
tests/unit/test_route_index.py checks that every route of every service is
chosen as FastAPI's own dispatch chooses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter, _IncludedRouter
from starlette.routing import BaseRoute, Match, Mount, Route, get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

#: Where FastAPI keeps its own request state in the scope (fastapi/routing.py).
_FASTAPI = "fastapi"


@dataclass(frozen=True)
class _Top:
    """A route of the router itself (an ops route, a mount): matched and
    handled as the router does."""

    route: BaseRoute

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return self.route.matches(scope)

    async def handle(self, scope: Scope, child: Scope, receive: Receive, send: Send) -> None:
        scope.update(child)
        await self.route.handle(scope, receive, send)


@dataclass(frozen=True)
class _Included:
    """An API route of an included router, with FastAPI's context for it
    (its path with the prefix, its app built with the router's dependencies)."""

    context: Any  # fastapi.routing._EffectiveRouteContext
    included: Any  # the _IncludedRouter it was chosen through (the innermost)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return self.context.matches(scope)

    async def handle(self, scope: Scope, child: Scope, receive: Receive, send: Send) -> None:
        # What _IncludedRouter._handle_selected leaves in the scope.
        route = self.context.original_route
        scope.update(child)
        scope["route"] = route
        state = scope.setdefault(_FASTAPI, {})
        state["included_router"] = self.included
        state["effective_route_context"] = self.context
        await route.handle(scope, receive, send)


#: A route the index does not know: reaching it means asking the router.
_UNKNOWN = object()


@dataclass
class _Index:
    #: The routers the index was built from (the app's, every included one)
    #: and their route versions then.
    routers: list[APIRouter]
    version: list[int]
    #: (first segment, second segment or None for a one-segment path) -> candidates in order
    by_two: dict[tuple[str, str | None], list[Any]] = field(default_factory=dict)
    #: first segment -> candidates in order (routes literal in their first segment only)
    by_one: dict[str, list[Any]] = field(default_factory=dict)
    anywhere: list[Any] = field(default_factory=list)

    def candidates(self, path: str) -> list[Any]:
        parts = path.split("/", 3)  # "", first, second, the rest
        first = parts[1]
        second = parts[2] if len(parts) > 2 else None
        found = self.by_two.get((first, second))
        if found is None:
            found = self.by_one.get(first)
        return self.anywhere if found is None else found


def _leaves(router: APIRouter, routers: list[APIRouter]) -> list[tuple[Any, str | None]]:
    """(candidate, path template) of every route in the router's order; an
    included router's routes in its place. ``routers`` gets every router met."""
    found: list[tuple[Any, str | None]] = []
    routers.append(router)
    for route in router.routes:
        if isinstance(route, _IncludedRouter):
            found += _included_leaves(route, routers)
        elif isinstance(route, (Route, Mount)):  # APIRoute is a Route
            found.append((_Top(route), route.path_format))
        else:
            found.append((_Top(route), None))
    return found


def _included_leaves(included: Any, routers: list[APIRouter]) -> list[tuple[Any, str | None]]:
    found: list[tuple[Any, str | None]] = []
    routers.append(included.original_router)
    for candidate in included.effective_candidates():
        if isinstance(candidate, _IncludedRouter):
            found += _included_leaves(candidate, routers)
        elif isinstance(candidate.original_route, APIRoute):
            found.append((_Included(candidate, included), candidate.path_format))
        else:
            found.append((_UNKNOWN, None))
    return found


def _versions(routers: list[APIRouter]) -> list[int]:
    # Starlette's own route list has no version: its length stands in (an append).
    return [len(routers[0].routes), *(router._routes_version for router in routers)]


def _build(router: APIRouter) -> _Index:
    two: dict[tuple[str, str | None], list[tuple[int, Any]]] = {}
    one: dict[str, list[tuple[int, Any]]] = {}
    anywhere: list[tuple[int, Any]] = []
    routers: list[APIRouter] = []
    for order, (candidate, template) in enumerate(_leaves(router, routers)):
        segments = template.split("/")[1:] if template and template.startswith("/") else None
        if segments is None or "{" in segments[0]:
            anywhere.append((order, candidate))
        elif len(segments) == 1:
            two.setdefault((segments[0], None), []).append((order, candidate))
        elif "{" not in segments[1]:
            two.setdefault((segments[0], segments[1]), []).append((order, candidate))
        else:
            one.setdefault(segments[0], []).append((order, candidate))

    def in_order(*groups: list[tuple[int, Any]]) -> list[Any]:
        return [candidate for _, candidate in sorted(entry for group in groups for entry in group)]

    index = _Index(routers, _versions(routers), anywhere=in_order(anywhere))
    index.by_one = {first: in_order(group, anywhere) for first, group in one.items()}
    index.by_two = {key: in_order(group, one.get(key[0], []), anywhere) for key, group in two.items()}
    return index


class RouteIndex:
    """The router's dispatch (``router.middleware_stack``), through the index
    first; the router's own ``app`` for anything the index does not answer."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.fallback: ASGIApp = router.app
        self._index: _Index | None = None

    def _current(self) -> _Index:
        # A route added after the first request (to the router or to an
        # included one) changes a version: the index is built again.
        index = self._index
        if index is None or _versions(index.routers) != index.version:
            index = self._index = _build(self.router)
        return index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "fastapi.telemetry" in scope:
            await self.fallback(scope, receive, send)
            return
        path = get_route_path(scope)
        if path.startswith("/"):
            for candidate in self._current().candidates(path):
                if candidate is _UNKNOWN:
                    break
                match, child = candidate.matches(scope)
                if match is Match.FULL:
                    if "router" not in scope:
                        scope["router"] = self.router
                    await candidate.handle(scope, child, receive, send)
                    return
        await self.fallback(scope, receive, send)


def index_routes(app: FastAPI) -> None:
    """Dispatch ``app``'s requests through a ``RouteIndex`` of its router
    (a router built with middlewares of its own keeps its dispatch)."""
    if app.router.middleware_stack == app.router.app:
        app.router.middleware_stack = RouteIndex(app.router)
