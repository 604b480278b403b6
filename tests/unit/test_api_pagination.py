"""Cursor pagination: opaque cursors bound to their filters, bounded limits."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import Depends

from libs.api.app import create_service_app
from libs.api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    PageParams,
    cursor_key,
    cursor_scope,
    cursor_values,
    decode_cursor,
    encode_cursor,
    page_params,
)
from libs.api.problems import Problem
from libs.auth.tokens import TokenVerifier
from tests.unit.test_api_security import PUBLIC_PEM

ROWS = [{"row_id": i, "name": f"n{i}"} for i in range(1, 8)]


def fetch(after: int | None, limit: int) -> list[dict[str, object]]:
    return [r for r in ROWS if after is None or r["row_id"] > after][: limit + 1]  # type: ignore[operator]


def test_pages_walk_every_row_once() -> None:
    scope = cursor_scope(country="FR")
    seen: list[object] = []
    params = PageParams(None, 3)
    while True:
        page = Page[dict].of(fetch(params.after(scope), 3), 3, scope, key=lambda r: r["row_id"], item=lambda r: r)
        seen += [r["name"] for r in page.items]
        if page.next_cursor is None:
            break
        params = PageParams(page.next_cursor, 3)
    assert seen == [r["name"] for r in ROWS]


def test_last_page_has_no_cursor_and_empty_page_is_fine() -> None:
    scope = cursor_scope()
    assert Page[dict].of(ROWS, 10, scope, key=lambda r: r["row_id"], item=lambda r: r).next_cursor is None
    assert Page[dict].of([], 10, scope, key=lambda r: r["row_id"], item=lambda r: r).items == []


def test_cursor_is_opaque_and_round_trips() -> None:
    cursor = encode_cursor(42, "scope")
    assert "42" not in cursor and "=" not in cursor
    assert decode_cursor(cursor, "scope") == 42


@pytest.mark.parametrize("cursor", ["not-base64!", encode_cursor(1, "other-filters"), "e30"])
def test_bad_or_foreign_cursors_are_422_naming_the_cursor(cursor: str) -> None:
    with pytest.raises(Problem) as exc:
        decode_cursor(cursor, cursor_scope(country="FR"))
    assert exc.value.status == 422
    assert exc.value.extra["errors"][0]["field"] == "query.cursor"


def test_scope_ignores_absent_filters_and_order() -> None:
    assert cursor_scope(a=1, b=None) == cursor_scope(a=1)
    assert cursor_scope(a=1, b=2) == cursor_scope(b=2, a=1) != cursor_scope(a=1, b=3)


async def test_limit_is_bounded_through_fastapi() -> None:
    app = create_service_app(
        "t", title="t", version="1", verifier=TokenVerifier(issuer="i", audience="a", public_key=PUBLIC_PEM)
    )

    @app.get("/v1/things")
    async def things(page: PageParams = Depends(page_params)) -> dict[str, object]:
        return {"limit": page.limit, "cursor": page.cursor}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/v1/things")).json() == {"limit": DEFAULT_LIMIT, "cursor": None}
        assert (await client.get(f"/v1/things?limit={MAX_LIMIT}")).json()["limit"] == MAX_LIMIT
        for bad in (0, MAX_LIMIT + 1):
            response = await client.get(f"/v1/things?limit={bad}")
            assert response.status_code == 422
            assert response.json()["errors"][0]["field"] == "query.limit"


def test_a_keyset_cursor_reads_back_as_its_column_values_or_is_a_422() -> None:
    order = (("starts_at", datetime.fromisoformat), ("session_id", UUID))
    row = {"starts_at": datetime(2026, 3, 2, 10, tzinfo=UTC), "session_id": uuid4()}
    assert cursor_values(cursor_key(row, order), order) == [row["starts_at"], row["session_id"]]
    for foreign in (7, ["2026-03-02T10:00:00+00:00"], ["not a time", str(uuid4())], {"a": 1}):
        with pytest.raises(Problem) as refused:
            cursor_values(foreign, order)
        assert refused.value.status == 422
