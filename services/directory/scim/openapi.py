"""The OpenAPI description of the SCIM routes, derived from the SCIM schemas
the service publishes (``/Schemas``), so the two never disagree. Bodies are
``application/scim+json`` and close every object to undeclared members, as
the service does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI
from scim2_models import Attribute, PatchOp, SearchRequest

from services.directory.scim.errors import MEDIA_TYPE
from services.directory.scim.models import PROVIDER, ScimUser

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


def _schemas(urn: str | None) -> dict[str, Any]:
    """The ``schemas`` member of a request body. RFC 7643 §3 calls it
    REQUIRED, but scim2-models (hence the service) reads a body that omits it
    as asserting the message's own schema; one that lists schemas must list
    that one (else a 400)."""
    return {"type": "array", "items": {"type": "string"}, "contains": {"const": str(urn)},
            "description": f"Must list {urn}; a body without it is read as one."}


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
        "schemas": _schemas(ScimUser.__schema__),
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
    return {"type": "object", "additionalProperties": False, "required": ["userName"], "properties": properties}


def _message(urn: str | None, members: dict[str, Any], required: list[str]) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "object", "additionalProperties": False,
                               "properties": {"schemas": _schemas(urn), **members}}
    return message | ({"required": required} if required else {})


BODIES: dict[str, Any] = {
    "PatchOp": lambda: _message(
        PatchOp.__schema__,
        {"Operations": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["op"],
            "properties": {"op": {"type": "string", "enum": ["add", "replace", "remove"]},
                           "path": {"type": "string"}, "value": {}}}}},
        ["Operations"]),
    "SearchRequest": lambda: _message(
        SearchRequest.__schema__,
        {name: {"type": kind} for name, kind in (
            ("filter", "string"), ("sortBy", "string"), ("sortOrder", "string"), ("startIndex", "integer"),
            ("count", "integer"))}
        | {name: {"type": "array", "items": {"type": "string"}} for name in ("attributes", "excludedAttributes")},
        []),
    "User": user_schema,
}


def body(kind: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a route's request body."""
    return {"requestBody": {"required": True, "content": {MEDIA_TYPE: {"schema": BODIES[kind]()}}}}


def _open(properties: dict[str, Any]) -> dict[str, Any]:
    """An answer's object: its members typed, none required (``attributes``
    and ``excludedAttributes`` choose what is returned), and open to what a
    later version adds."""
    return {"type": "object", "properties": properties}


def _listed(resource: dict[str, Any]) -> dict[str, Any]:
    """A ``ListResponse`` of ``resource`` (RFC 7644 §3.4.2)."""
    return _open({"schemas": _STRINGS, "totalResults": {"type": "integer"}, "startIndex": {"type": "integer"},
                  "itemsPerPage": {"type": "integer"}, "Resources": {"type": "array", "items": resource}})


_STRINGS = {"type": "array", "items": {"type": "string"}}
_SUPPORTED = _open({"supported": {"type": "boolean"}, "maxResults": {"type": "integer"},
                    "maxOperations": {"type": "integer"}, "maxPayloadSize": {"type": "integer"}})


def _user_answer() -> dict[str, Any]:
    return _open(user_schema()["properties"] | {"schemas": _STRINGS})


def _resource_type() -> dict[str, Any]:
    return _open({"schemas": _STRINGS, "id": {"type": "string"}, "name": {"type": "string"},
                  "endpoint": {"type": "string"}, "description": {"type": "string"}, "schema": {"type": "string"},
                  "schemaExtensions": {"type": "array", "items": _open(
                      {"schema": {"type": "string"}, "required": {"type": "boolean"}})},
                  "meta": _open({name: {"type": "string"} for name in META})})


def _schema() -> dict[str, Any]:
    members = {name: {"type": kind} for name, kind in (
        ("name", "string"), ("type", "string"), ("multiValued", "boolean"), ("description", "string"),
        ("required", "boolean"), ("caseExact", "boolean"), ("mutability", "string"), ("returned", "string"),
        ("uniqueness", "string"))} | {"canonicalValues": _STRINGS, "referenceTypes": _STRINGS}
    # One level of sub-attributes: SCIM nests no deeper (RFC 7643 §2.4).
    attribute = _open(members | {"subAttributes": {"type": "array", "items": _open(members)}})
    return _open({"schemas": _STRINGS, "id": {"type": "string"}, "name": {"type": "string"},
                  "description": {"type": "string"}, "attributes": {"type": "array", "items": attribute},
                  "meta": _open({name: {"type": "string"} for name in META})})


#: What a successful SCIM answer holds, by kind.
ANSWERS: dict[str, Any] = {
    "User": _user_answer,
    "Users": lambda: _listed(_user_answer()),
    "ResourceType": _resource_type,
    "ResourceTypes": lambda: _listed(_resource_type()),
    "Schema": _schema,
    "Schemas": lambda: _listed(_schema()),
    "ServiceProviderConfig": lambda: _open(
        {"schemas": _STRINGS, "documentationUri": {"type": "string"}, "patch": _SUPPORTED, "bulk": _SUPPORTED,
         "filter": _SUPPORTED, "changePassword": _SUPPORTED, "sort": _SUPPORTED, "etag": _SUPPORTED,
         "authenticationSchemes": {"type": "array", "items": _open(
             {name: {"type": "string"} for name in ("type", "name", "description", "specUri", "documentationUri")}
             | {"primary": {"type": "boolean"}})},
         "meta": _open({name: {"type": "string"} for name in META})}),
}


def responses(*statuses: int, answer: str | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a SCIM route: its success (an ``answer`` of
    ``ANSWERS``) and its SCIM errors."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status in (204, 304):
            documented[status] = {"description": _SUCCESS[status]}
        elif status in _SUCCESS:
            assert answer is not None, "a route answering a body names what it holds"
            documented[status] = {"description": _SUCCESS[status],
                                  "content": {MEDIA_TYPE: {"schema": ANSWERS[answer]()}}}
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


def without_validation_422(app: FastAPI) -> None:
    """FastAPI documents a 422 for every route taking input, but a SCIM route
    never sends one: ``errors.ScimRoute`` answers invalid input with a SCIM
    400 (``invalidValue``/``invalidSyntax``), which ``responses`` documents.
    The app's document then says what is sent (the ``/v1`` routes keep the
    422 of their problem responses)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for path, item in generate()["paths"].items():
                if path.startswith("/v2/"):
                    for operation in item.values():
                        operation["responses"].pop("422", None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
