"""Envelope <-> bytes, with orjson (several times faster than the stdlib json)."""

from __future__ import annotations

from typing import Any

import orjson

from libs.events.envelope import Envelope

#: Attributes omitted from the wire when None. Public because the JSON Schema
#: generator (libs/events/schemagen.py) derives "required" from it: every other
#: envelope attribute is always written.
OPTIONAL_ATTRIBUTES = ("country", "correlationid", "causationid")


def dumps(envelope: Envelope) -> bytes:
    body = envelope.model_dump(mode="python")
    # CloudEvents: an absent optional attribute is omitted, not null.
    for key in OPTIONAL_ATTRIBUTES:
        if body[key] is None:
            del body[key]
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def loads(raw: bytes | str) -> Envelope:
    return Envelope.model_validate(orjson.loads(raw))


def to_json_dict(envelope: Envelope) -> dict[str, Any]:
    """The envelope as JSON-compatible values (what JSONB stores)."""
    return orjson.loads(dumps(envelope))
