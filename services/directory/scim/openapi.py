"""The OpenAPI description of the SCIM routes, derived from the SCIM schemas
the service publishes (``/Schemas``), so the two never disagree. Bodies are
``application/scim+json`` and close every object to undeclared members, as
the service does.

What the service refuses with a 400 is said in the document where JSON
Schema can say it: a blank ``userName``, an e-mail without a value or with
an address that is not one, the Binome extension's codes, a PATCH operation
without what its ``op`` needs, the grammar of an attribute path
(``attributes``, ``excludedAttributes``, ``sortBy``; RFC 7644 §3.10), a sort
order. What it cannot say is named by the 400's ``scimType`` (``RULES``):
a filter outside RFC 7644's grammar, a path that names no attribute of the
User (names are case-insensitive and may carry their schema's URN), a PATCH
path that selects nothing.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from fastapi import FastAPI
from scim2_models import Attribute, PatchOp, SearchRequest

from services.directory.scim.errors import MEDIA_TYPE
from services.directory.scim.mapping import COUNTRY, LANGUAGE, MAX_JOB_LEVEL
from services.directory.scim.models import BINOME_USER, PROVIDER, ScimUser

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

#: The ``scimType`` of a 400 refusing what no JSON Schema of the document can
#: rule out: a filter outside RFC 7644's grammar (§3.4.2.2), an attribute path
#: of the documented grammar that names no attribute of the User, or names one
#: that cannot be sorted on (§3.10, §3.4.2.3), a PATCH path that selects no
#: value (§3.5.2).
RULES = ("invalidFilter", "invalidPath", "noTarget")

_NAME = "[A-Za-z][A-Za-z0-9_-]*"
#: An attribute path in RFC 7644 §3.10's notation: ``[URN:]name[.subName]``.
ATTRIBUTE_PATH = rf"(?:urn:[A-Za-z0-9._:-]+:)?{_NAME}(?:\.{_NAME})?"
#: ``attributes`` / ``excludedAttributes`` as a query parameter: comma-separated paths.
ATTRIBUTE_PATHS = rf"^\s*{ATTRIBUTE_PATH}\s*(?:,\s*{ATTRIBUTE_PATH}\s*)*$"
SORT_ORDERS = ["ascending", "descending"]
_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_LANGUAGE = LANGUAGE.pattern.strip("^$")
_TEXT = "[^\\u0000]"  # a character PostgreSQL can store


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)


#: What email-validator (pydantic's ``EmailStr``) refuses beyond the address
#: grammar: a domain that is, or is under, a special-use name (``.test``...).
_DELIVERABLE = "^(?!.*@(?:.*\\.)?(?:{})\\.?$).*$".format(
    "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES))
META = ("resourceType", "created", "lastModified", "location", "version")
_DATED = ("created", "lastModified")
_SUCCESS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified"}


def _schemas(urn: str | None, known: list[str] | None = None) -> dict[str, Any]:
    """The ``schemas`` member of a request body. RFC 7643 §3 calls it
    REQUIRED, but scim2-models (hence the service) reads a body that omits it
    as asserting the message's own schema; one that lists schemas must list
    that one (else a 400), and a resource's lists none but its ``known``
    ones (its extensions)."""
    items = {"type": "string"} | ({"enum": known} if known else {})
    return {"type": "array", "items": items, "contains": {"const": str(urn)},
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


def _user_properties() -> dict[str, Any]:
    """The members of a User, typed as ``/Schemas`` types them."""
    core, *extensions = PROVIDER.schemas
    properties: dict[str, Any] = {
        "schemas": _schemas(ScimUser.__schema__, [str(schema.id) for schema in PROVIDER.schemas]),
        "id": {"type": "string", "description": "Read-only: ignored in a request."},
        "externalId": {"type": "string", "description": "The provisioning client's id for the user."},
        "meta": {"type": "object", "additionalProperties": False, "description": "Read-only: ignored in a request.",
                 "properties": {name: {"type": "string"} | ({"format": "date-time"} if name in _DATED else {})
                                for name in META}},
    }
    properties |= {a.name: _attribute(a) for a in core.attributes or []}
    for extension in extensions:
        properties[extension.id] = {
            "type": "object",
            "additionalProperties": False,
            "description": extension.description or extension.name,
            "properties": {a.name: _attribute(a) for a in extension.attributes or []},
        }
    return properties


def _with_request_rules(properties: dict[str, Any]) -> dict[str, Any]:
    """What ``mapping.record_of`` refuses in a User a client sends, said
    where it applies (an answer may leave sub-attributes out: not there)."""
    _storable(properties)
    properties["userName"] |= {"minLength": 1, "pattern": rf"^{_TEXT}*[^\s\u0000]{_TEXT}*$", "description": "Not blank."}
    # RFC 7643 §2.4: the primary value "MUST appear no more than once".
    properties["emails"] |= {"contains": {"type": "object", "required": ["primary"],
                                          "properties": {"primary": {"const": True}}},
                             "minContains": 0, "maxContains": 1}
    email = properties["emails"]["items"]
    email["required"] = ["value"]
    email["properties"]["value"] |= {"format": "email", "pattern": _DELIVERABLE,
                                     "description": "An e-mail address, not at a special-use domain (RFC 6761)."}
    manager = properties["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["properties"]["manager"]
    manager["required"] = ["value"]
    manager["properties"]["value"] |= {"pattern": _UUID, "description": "The manager's User id (a UUID)."}
    binome = properties[BINOME_USER]["properties"]
    binome["country"] |= {"pattern": COUNTRY.pattern}
    binome["jobLevel"] |= {"minimum": 1, "maximum": MAX_JOB_LEVEL}
    binome["languages"] |= {"pattern": rf"^\s*(?:{_LANGUAGE}\s*)?(?:,\s*(?:{_LANGUAGE}\s*)?)*$"}
    _nullable(properties)  # last: what is required is known
    return properties


def _storable(schema: Any) -> None:
    """Every free string of ``schema`` without the NUL character, which
    PostgreSQL cannot store (the service refuses it with a 400)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"pattern", "format", "enum"} & schema.keys():
            schema["pattern"] = f"^{_TEXT}*$"
        for value in schema.values():
            _storable(value)


def _nullable(properties: dict[str, Any], required: Any = ("userName",)) -> None:
    """Each attribute may be sent as null: unassigned (RFC 7643 §2.5); but
    what is ``required`` (``userName``, an e-mail's value...) and ``schemas``."""
    for name, schema in properties.items():
        if name in required or name == "schemas":
            continue
        if isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
        for inner in (schema, schema.get("items") or {}):
            _nullable(inner.get("properties") or {}, inner.get("required") or ())


@cache
def user_schema() -> dict[str, Any]:
    """The User resource a client sends: core attributes, and one member per extension."""
    return {"type": "object", "additionalProperties": False, "required": ["userName"],
            "properties": _with_request_rules(_user_properties())}


def _message(urn: str | None, members: dict[str, Any], required: list[str]) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "object", "additionalProperties": False,
                               "properties": {"schemas": _schemas(urn), **members}}
    return message | ({"required": required} if required else {})


def _patch_operation() -> dict[str, Any]:
    """One PATCH operation (RFC 7644 §3.5.2): ``add`` and ``replace`` carry a
    ``value`` (without a ``path``, the User's attributes to set), ``remove``
    a ``path``."""
    path = {"type": "string", "minLength": 1,
            "description": 'An attribute path, with a value filter if need be (emails[type eq "work"].value).'}
    changes = {"type": "object", "additionalProperties": False, "minProperties": 1,
               "properties": {k: v for k, v in user_schema()["properties"].items() if k not in ("id", "meta")}}
    sets = {"type": "string", "enum": ["add", "replace"]}
    return {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["op", "path", "value"],
         "properties": {"op": sets, "path": path, "value": {}}},
        {"type": "object", "additionalProperties": False, "required": ["op", "value"],
         "properties": {"op": sets, "value": changes}},
        {"type": "object", "additionalProperties": False, "required": ["op", "path"],
         "properties": {"op": {"type": "string", "enum": ["remove"]}, "path": path, "value": {}}},
    ]}


BODIES: dict[str, Any] = {
    "PatchOp": lambda: _message(
        PatchOp.__schema__, {"Operations": {"type": "array", "minItems": 1, "items": _patch_operation()}},
        ["Operations"]),
    "SearchRequest": lambda: {**_message(
        SearchRequest.__schema__,
        {"filter": {"type": "string"},
         "sortBy": {"type": "string", "pattern": f"^{ATTRIBUTE_PATH}$"},
         "sortOrder": {"type": "string", "enum": SORT_ORDERS},
         "startIndex": {"type": "integer"}, "count": {"type": "integer"}}
        | {name: {"type": "array", "items": {"type": "string", "pattern": f"^{ATTRIBUTE_PATH}$"}}
           for name in ("attributes", "excludedAttributes")},
        []), "not": {"required": ["attributes", "excludedAttributes"]},
        "description": "attributes and excludedAttributes exclude each other."},
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
    return _open(_user_properties() | {"schemas": _STRINGS})


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
