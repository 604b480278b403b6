"""Walking a list page by page while the read tables are rebuilt under it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx


async def walk_across_rebuild(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, Any],
    headers: dict[str, str],
    rebuild: Callable[[], Awaitable[object]],
    *,
    rebuild_after: int = 2,
) -> list[dict[str, Any]]:
    """Every item of the list at ``path``, one per page, with ``rebuild`` run
    after page ``rebuild_after``: a reader is half way through when ops
    rebuild the tables (``binome replay <service> read-tables``)."""
    seen: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        query = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += page["items"]
        pages += 1
        if pages == rebuild_after:
            await rebuild()
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def listed(client: httpx.AsyncClient, path: str, params: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    """The whole list at ``path`` in one page."""
    response = await client.get(path, params={**params, "limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]
