"""The OpenAPI description of the SCIM routes, derived from the SCIM schemas
the service publishes (``/Schemas``), so the two never disagree. Bodies are
``application/scim+json`` and close every object to undeclared members, as
the service does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from scim2_models import Attribute

from services.directory.scim.errors import MEDIA_TYPE
from services.directory.scim.models import PROVIDER

_TYPES = {"string": "string", "boolean": "boolean", "integer": "integer", "decimal": "number",
          "dateTime": "string", "reference": "string", "binary": "string"}

ERROR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["schemas", "status"],
    "properties": {
        "schemas": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string"},
        "scimType": {"type": "string"},
        "detail": {"type": "string"},
    },
}
ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
META = ("resourceType", "created", "lastModified", "location", "version")
_SUCCESS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified"}


def _attribute(attribute: Attribute) -> dict[str, Any]:
    if attribute.sub_attributes:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {sub.name: _attribute(sub) for sub in attribute.sub_attributes},
        }
    else:
        schema = {"type": _TYPES.get(attribute.type.value if attribute.type else "string", "string")}
    if attribute.description:
        schema["description"] = attribute.description
    return {"type": "array", "items": schema} if attribute.multi_valued else schema


@cache
def user_schema() -> dict[str, Any]:
    """The User resource a client sends: core attributes, and one member per extension."""
    core, *extensions = PROVIDER.schemas
    properties: dict[str, Any] = {
        "schemas": {"type": "array", "items": {"type": "string"}},
        "id": {"type": "string", "description": "Read-only: ignored in a request."},
        "externalId": {"type": "string", "description": "The provisioning client's id for the user."},
        "meta": {"type": "object", "additionalProperties": False, "description": "Read-only: ignored in a request.",
                 "properties": {name: {"type": "string"} for name in META}},
    }
    properties |= {a.name: _attribute(a) for a in core.attributes or []}
    for extension in extensions:
        properties[extension.id] = {
            "type": "object",
            "additionalProperties": False,
            "description": extension.description or extension.name,
            "properties": {a.name: _attribute(a) for a in extension.attributes or []},
        }
    return {"type": "object", "additionalProperties": False, "required": ["schemas", "userName"],
            "properties": properties}


def _message(members: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required,
            "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, **members}}


BODIES: dict[str, Any] = {
    "PatchOp": lambda: _message(
        {"Operations": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["op"],
            "properties": {"op": {"type": "string", "enum": ["add", "replace", "remove"]},
                           "path": {"type": "string"}, "value": {}}}}},
        ["schemas", "Operations"]),
    "SearchRequest": lambda: _message(
        {name: {"type": kind} for name, kind in (
            ("filter", "string"), ("sortBy", "string"), ("sortOrder", "string"), ("startIndex", "integer"),
            ("count", "integer"))}
        | {name: {"type": "array", "items": {"type": "string"}} for name in ("attributes", "excludedAttributes")},
        ["schemas"]),
    "User": user_schema,
}


def body(kind: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a route's request body."""
    return {"requestBody": {"required": True, "content": {MEDIA_TYPE: {"schema": BODIES[kind]()}}}}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a SCIM route: its success and its SCIM errors."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status in (204, 304):
            documented[status] = {"description": _SUCCESS[status]}
        elif status in _SUCCESS:
            documented[status] = {"description": _SUCCESS[status], "content": {MEDIA_TYPE: {"schema": ANY_OBJECT}}}
        else:
            documented[status] = {"description": "SCIM error (RFC 7644 §3.12)",
                                  "content": {MEDIA_TYPE: {"schema": ERROR}}}
    if 404 in documented:
        # A path the platform cannot route to the directory at all (an id
        # holding a newline) is the platform's own 404, in problem+json.
        documented[404]["content"]["application/problem+json"] = {"schema": ANY_OBJECT}
    for status in (413, 429, 503):  # the platform's own limits, answered before the route runs
        documented.setdefault(status, {"description": "Refused by the platform's limits"})
    return documented
