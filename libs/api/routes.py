"""The API routes of an app, through included routers: FastAPI keeps an
included router as one route holding the original router and its prefix."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import compile_path, get_route_path
from starlette.types import Scope


def api_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, APIRoute]]:
    """(path template, route) of every API route under ``routes``."""
    result = []
    for route in routes:
        if isinstance(route, APIRoute):
            result.append((prefix + route.path, route))
        elif hasattr(route, "original_router"):
            result += api_routes(route.original_router.routes, prefix + route.include_context.prefix)
    return result


def allowed_methods(routes: list[Any], scope: Scope) -> list[str]:
    """Every method some route answers at the request's path: the ``Allow``
    of a 405. (Starlette's own names only the first route matching the path,
    while a path often has one route per method.)"""
    path = get_route_path(scope)
    matching = [(template, route) for template, route in api_routes(routes) if compile_path(template)[0].match(path)]
    # "/v1/waves/{wave_id}" matches "/v1/waves/1:close" too (a parameter
    # takes any segment): the path is the template with the most literal text.
    literal = max((len(_PARAMETER.sub("", t)) for t, _ in matching), default=0)
    methods: set[str] = set()
    for template, route in matching:
        if len(_PARAMETER.sub("", template)) == literal:
            methods |= route.methods or set()
    return sorted(methods)


_PARAMETER = re.compile(r"\{[^}]+\}")
