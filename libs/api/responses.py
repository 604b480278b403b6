"""JSON answers encoded in one pass.

FastAPI encodes a route's ``response_model`` with pydantic-core straight to
bytes. A route that builds its own response (headers such as ``ETag`` and
``Location``, a status chosen at run time, an idempotent replay) used to go
through ``model_dump(mode="json")`` and then the standard library's
``json.dumps``: two passes, the second in pure Python. ``model_json`` lets
pydantic-core do both at once, and ``OrjsonResponse`` encodes plain dicts
(problem+json answers) with orjson.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response


class OrjsonResponse(JSONResponse):
    """A ``JSONResponse`` encoded by orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def model_json(
    model: type[BaseModel], doc: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``doc`` checked against ``model`` and encoded by pydantic-core in one pass."""
    body = model.model_validate(doc).model_dump_json()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def page_json(page_model: type[BaseModel], items: Sequence[str], next_cursor: str | None) -> Response:
    """A page whose items are JSON texts (documents as the database stored
    them), checked against ``page_model`` and encoded by pydantic-core
    straight from the text: no dict per item is built only to be checked
    and dropped (that, with ``orjson.loads`` of each, was most of a list's
    cost). The answer is the one ``response_model=page_model`` gave."""
    body = '{"items":[' + ",".join(items) + '],"next_cursor":' + orjson.dumps(next_cursor).decode() + "}"
    return Response(page_model.model_validate_json(body).model_dump_json(), media_type="application/json")
