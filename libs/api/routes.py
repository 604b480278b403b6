"""The API routes of an app: how a path parameter matches (``ApiRoute``),
and the routes through included routers (FastAPI keeps an included router
as one route holding the original router and its prefix)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import compile_path, get_route_path
from starlette.types import Scope


class ObjectSegment(Convertor[str]):
    """A path segment naming an object: no ``:``, which starts an action
    (``/v1/waves/{wave_id}:close-enrolment``), and no leading ``.``, which
    starts SCIM's reserved names (``/v2/Users/.search``). Without it
    ``/v1/waves/{wave_id}`` would take ``<id>:close-enrolment`` as an id, and
    a GET on an action would be the object's GET refusing that id (422)
    instead of a 405 naming the action's method."""

    regex = r"[^/:.][^/:]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class ScimSegment(ObjectSegment):
    """A SCIM id: ``:`` allowed (a schema's id is a URN), no leading ``.``."""

    regex = r"[^/.][^/]*"


register_url_convertor("object", ObjectSegment())
register_url_convertor("scim_id", ScimSegment())

#: A path parameter without a convertor of its own (``{wave_id}``).
_BARE_PARAMETER = re.compile(r"\{(\w+)\}")


class ApiRoute(APIRoute):
    """The route class of every Binome router (``APIRouter(route_class=ApiRoute)``):
    each bare path parameter matches one ``convertor`` segment. The OpenAPI
    document is unchanged (FastAPI writes the path without convertors)."""

    convertor = "object"

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(_BARE_PARAMETER.sub(rf"{{\1:{self.convertor}}}", path), endpoint, **kwargs)


def api_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, APIRoute]]:
    """(path template as OpenAPI writes it, route) of every API route under ``routes``."""
    result = []
    for route in routes:
        if isinstance(route, APIRoute):
            result.append((prefix + route.path_format, route))
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
