"""Every successful answer of every service is described in its OpenAPI
document: a client generated from it (openapi-typescript, openapi-generator)
gets a type, never ``unknown``.

Untyped: no schema, an empty one (``{}``), or an object without
``properties`` (and without a typed ``additionalProperties``: a typed map is
a type). Bodies that are not JSON (pictures, GraphML, CSV, calendars) are
described by their media type; a ``string``/``binary`` schema is enough.
"""

from __future__ import annotations

from typing import Any

from tests.support.openapi_matrix import documents


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def untyped(doc: dict[str, Any], schema: dict[str, Any] | None, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``schema`` leaves a generated client without a type."""
    if not schema:
        return True
    ref = schema.get("$ref")
    if ref in seen:
        return False  # a recursive model: typed where it was first met
    resolved = _resolve(doc, schema)
    seen = seen | {ref} if ref else seen
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in resolved:
            return any(untyped(doc, s, seen) for s in resolved[combinator] if s.get("type") != "null")
    kind = resolved.get("type")
    if kind == "array":
        return untyped(doc, resolved.get("items"), seen)
    if kind == "object" or (kind is None and "properties" not in resolved):
        if resolved.get("properties"):
            return any(untyped(doc, s, seen) for s in resolved["properties"].values())
        extra = resolved.get("additionalProperties")
        return not isinstance(extra, dict) or untyped(doc, extra, seen)
    if kind is None:
        return any(untyped(doc, s, seen) for s in resolved["properties"].values())
    return False  # string, number, integer, boolean, enum


def untyped_answers() -> list[str]:
    found = []
    for service, doc in documents().items():
        for path, item in doc["paths"].items():
            for method, operation in item.items():
                for status, response in operation.get("responses", {}).items():
                    if not status.startswith("2") or status == "204":
                        continue
                    content = response.get("content")
                    if not content:
                        found.append(f"{service} {method.upper()} {path} {status}: no content described")
                        continue
                    for media, body in content.items():
                        if "json" in media and untyped(doc, body.get("schema")):
                            found.append(f"{service} {method.upper()} {path} {status} {media}")
    return found


def test_every_successful_json_answer_has_a_type() -> None:
    assert untyped_answers() == []


def test_the_check_sees_an_open_object() -> None:
    doc = {"components": {"schemas": {"Open": {"type": "object"}, "Map": {"type": "object", "additionalProperties": {"type": "integer"}}}}}
    assert untyped(doc, {})
    assert untyped(doc, {"$ref": "#/components/schemas/Open"})
    assert untyped(doc, {"type": "array", "items": {}})
    assert untyped(doc, {"type": "object", "properties": {"x": {}}})
    assert untyped(doc, {"anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}]})
    assert not untyped(doc, {"$ref": "#/components/schemas/Map"})
    assert not untyped(doc, {"type": "object", "properties": {"x": {"type": "string"}}})
