"""``GET /Users``: filter, sort and page the organisation's people.

In SQL when the filter and the sort key name columns of the read table
(``filters.where``): one indexed query for the page and one count. Otherwise
scim2-models evaluates the filter (``ScimFilter.match``) and the sort
(``SearchRequest.sort``) over the organisation's people, so no valid filter
goes unanswered.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from scim2_models import SearchRequest

from services.directory.scim.filters import Untranslatable, column_of, where
from services.directory.scim.mapping import user_of
from services.directory.scim.models import MAX_RESULTS, ScimUser
from services.directory.service_layer.people import decoded

DEFAULT_COUNT = 100


def page_bounds(request: SearchRequest[ScimUser]) -> tuple[int, int]:
    """(offset, limit) of the page asked for: startIndex is 1-based, count
    at most ``MAX_RESULTS`` (RFC 7644 §3.4.2.4 lets a server lower it)."""
    start = max(request.start_index or 1, 1)
    count = DEFAULT_COUNT if request.count is None else min(max(request.count, 0), MAX_RESULTS)
    return start - 1, count


async def search(
    pool: asyncpg.Pool, schema: str, organisation: str, request: SearchRequest[ScimUser], location: str
) -> tuple[int, list[ScimUser]]:
    """(totalResults, the page's users)."""
    offset, limit = page_bounds(request)
    try:
        condition, params = where(request.filter, 2) if request.filter else ("true", [])
        order = _order(request)
    except Untranslatable:
        return await _search_in_memory(pool, schema, organisation, request, location, offset, limit)
    base = f"FROM {schema}.people WHERE organisation = $1 AND NOT deleted AND ({condition})"
    async with pool.acquire() as conn:
        total = await conn.fetchval(f"SELECT count(*) {base}", organisation, *params)
        rows = [] if limit == 0 else await conn.fetch(
            f"SELECT * {base} ORDER BY {order} LIMIT {limit} OFFSET {offset}", organisation, *params
        )
    return total, [user_of(decoded(r), location) for r in rows]


def _order(request: SearchRequest[ScimUser]) -> str:
    if not request.sort_by:
        return "row_id"
    column = column_of(request.sort_binding(ScimUser))
    sql = f"lower({column.sql})" if column.kind == "text" else column.sql
    direction = "DESC" if request.sort_order and request.sort_order.value == "descending" else "ASC"
    return f"{sql} {direction} NULLS LAST, row_id"


async def _search_in_memory(
    pool: asyncpg.Pool, schema: str, organisation: str, request: SearchRequest[ScimUser], location: str,
    offset: int, limit: int,
) -> tuple[int, list[ScimUser]]:
    rows = await pool.fetch(
        f"SELECT * FROM {schema}.people WHERE organisation = $1 AND NOT deleted ORDER BY row_id", organisation
    )
    users: list[Any] = [user_of(decoded(r), location) for r in rows]
    if request.filter:
        users = [u for u in users if request.filter.match(u)]
    if request.sort_by:
        users = request.sort(users)
    return len(users), users[offset : offset + limit]
