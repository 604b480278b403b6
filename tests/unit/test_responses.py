"""``page_json`` and ``document_json``: stored JSON documents answer exactly
what ``response_model`` answered, each document rendered once per text."""

from __future__ import annotations

import enum
import time
from datetime import datetime

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from libs.api.pagination import Page
from libs.api.responses import document_json, model_json, page_json, rendered


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    colour: Colour
    levels: list[int]


class Item(BaseModel):
    name: str
    at: datetime
    inner: Inner
    note: str | None = None


STORED = [
    # As jsonb gives them back: keys reordered, a field the model drops, an
    # offset to normalise, text that is not ASCII.
    '{"at": "2026-03-01T10:00:00+00:00", "name": "Zoë", "inner": {"colour": "red", "levels": [1, 2]}, "extra": 1}',
    '{"at": "2026-03-02T09:30:00.5+01:00", "name": "Ana \\"A\\"", "inner": {"colour": "blue", "levels": []}, '
    '"note": "\\u00e9t\\u00e9"}',
]


@pytest.mark.parametrize("cursor", [None, "eyJrIjpbMV19.c2NvcGU"])
def test_a_page_answers_what_the_page_model_answers(cursor: str | None) -> None:
    expected = Page[Item](items=[Item.model_validate_json(t) for t in STORED], next_cursor=cursor).model_dump_json()

    answered = page_json(Page[Item], STORED, cursor)

    assert answered.body.decode() == expected
    assert answered.media_type == "application/json"
    assert "extra" not in orjson.loads(answered.body)["items"][0]


def test_an_empty_page() -> None:
    assert page_json(Page[Item], [], None).body == Page[Item](items=[]).model_dump_json().encode()


def test_a_text_is_rendered_once_and_a_changed_one_afresh() -> None:
    text = '{"at": "2026-03-03T00:00:00Z", "name": "once", "inner": {"colour": "red", "levels": [3]}}'
    changed = text.replace('"once"', '"twice"')
    before = rendered.cache_info()

    page_json(Page[Item], [text], None)
    page_json(Page[Item], [text], None)
    body = page_json(Page[Item], [changed], None).body

    after = rendered.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (2, 1)
    assert orjson.loads(body)["items"][0]["name"] == "twice"


def test_renderings_leave_memory_after_their_lifetime() -> None:
    """An erased person's last rendering is never served again (it is another
    text), and it does not linger either: the memo is dropped once its
    lifetime has passed, even in a process that renders nothing new."""
    import libs.api.responses as responses

    text = '{"at": "2026-03-03T00:00:00Z", "name": "erased soon", "inner": {"colour": "red", "levels": []}}'
    page_json(Page[Item], [text], None)
    assert rendered.cache_info().currsize >= 1
    rendered.since = time.monotonic() - responses.RENDERED_LIFETIME_S - 1  # its lifetime has passed

    page_json(Page[Item], [STORED[0]], None)

    assert rendered.cache_info().currsize == 1  # only what was rendered since


def test_a_document_the_model_refuses_raises_every_time() -> None:
    bad = '{"at": "not a time", "name": "x", "inner": {"colour": "green", "levels": []}}'
    for _ in range(2):
        with pytest.raises(ValidationError):
            page_json(Page[Item], [STORED[0], bad], None)


@pytest.mark.parametrize("text", STORED)
def test_a_document_answers_what_its_model_answers_from_the_decoded_document(text: str) -> None:
    headers = {"ETag": '"3"'}
    expected = model_json(Item, orjson.loads(text), headers=headers)

    answered = document_json(Item, text, headers=headers)

    assert (answered.body, answered.headers["etag"], answered.media_type) == (
        expected.body,
        expected.headers["etag"],
        expected.media_type,
    )
