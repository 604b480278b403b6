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

import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, get_args

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


#: Rendered documents kept per process (see ``rendered``): a page of 50 is
#: 50 entries, a few kilobytes each.
RENDERED_DOCUMENTS = 4096
#: How long the renderings stay in memory at most. An old text is never
#: served again, but an erased person's last rendering should not linger in
#: a quiet process until newer documents push it out: the whole memo is
#: dropped this often (a busy list renders its page again once a minute).
RENDERED_LIFETIME_S = 60.0


@lru_cache(maxsize=RENDERED_DOCUMENTS)
def _render(model: type[BaseModel], text: str) -> bytes:
    # Bytes, as pydantic-core writes them (``model_dump_json`` decodes them to
    # a str): a page is joined from them and sent, never decoded and encoded
    # again (for a page of 50, 85 kB copied once instead of four times).
    return model.__pydantic_serializer__.to_json(model.model_validate_json(text))


class Renderings:
    """``rendered(model, text)``: ``text`` (a stored JSON document) checked
    against ``model`` and encoded as the API answers it, by pydantic-core
    straight from the text.

    A pure function of its arguments, so it is memoised: checking and
    re-encoding 50 stored documents was most of a page's CPU, and a list is
    read far more often than its documents change. A document that changed
    (an update, an erasure's progress) is another text, rendered afresh; an
    old text is never served again, and leaves memory within
    ``RENDERED_LIFETIME_S`` (sooner if newer ones push it out). A document
    that fails the check raises, and nothing is kept.
    """

    def __init__(self) -> None:
        self.since = time.monotonic()

    def __call__(self, model: type[BaseModel], text: str) -> bytes:
        self._forget_if_old()
        return _render(model, text)

    def all(self, model: type[BaseModel], texts: Sequence[str]) -> list[bytes]:
        self._forget_if_old()
        return [_render(model, text) for text in texts]

    def _forget_if_old(self) -> None:
        if time.monotonic() - self.since >= RENDERED_LIFETIME_S:
            self.forget()

    def forget(self) -> None:
        _render.cache_clear()
        self.since = time.monotonic()

    def cache_info(self) -> Any:
        return _render.cache_info()


rendered = Renderings()


def document_json(model: type[BaseModel], text: str, headers: Mapping[str, str] | None = None) -> Response:
    """One stored JSON document, answered as ``response_model=model`` would (``rendered``)."""
    return Response(rendered(model, text), headers=headers, media_type="application/json")


@lru_cache(maxsize=64)
def _item_model(page_model: type[BaseModel]) -> type[BaseModel]:
    """``T`` of ``Page[T]``: the type of the page's ``items`` list."""
    (item,) = get_args(page_model.model_fields["items"].annotation)
    return item


def page_json(page_model: type[BaseModel], items: Sequence[str], next_cursor: str | None) -> Response:
    """A page whose items are JSON texts (documents as the database stored
    them), each checked and encoded by ``rendered``: no dict per item is
    built only to be checked and dropped. The answer is the one
    ``response_model=page_model`` gave (pydantic encodes a list's items as
    it encodes each alone, compact: tests/unit/test_responses.py)."""
    documents = b",".join(rendered.all(_item_model(page_model), items))
    body = b"".join((b'{"items":[', documents, b'],"next_cursor":', orjson.dumps(next_cursor), b"}"))
    return Response(body, media_type="application/json")
