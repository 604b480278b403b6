"""Cursor pagination for list endpoints (keyset, opaque cursors).

    @router.get("/v1/waves")
    async def list_waves(page: PageParams = Depends(page_params), country: str | None = None):
        scope = cursor_scope(country=country)
        after = page.after(scope)                   # None on the first page
        rows = await fetch(..., after=after, limit=page.limit + 1)
        return Page.of(rows, page.limit, scope, key=lambda r: r["row_id"], item=to_out)

* A cursor is the sort key of the last item returned, base64url-encoded
  JSON: clients must treat it as opaque. Keyset pagination never skips or
  repeats a row when rows are added meanwhile, and costs the same on page 1
  and page 1,000.
* A cursor remembers the filters it was issued for (``cursor_scope``); using
  it with other filters is a 422 naming ``query.cursor``, not a silently
  wrong page.
* ``limit`` defaults to ``DEFAULT_LIMIT`` and may not exceed ``MAX_LIMIT``
  (422 naming ``query.limit``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from libs.api.problems import Problem, invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")
R = TypeVar("R")


#: What a cursor is made of (unpadded base64url); its content no schema can
#: state: only what the API issued is read.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def invalid_query(field: str, message: str) -> Problem:
    """A 422 problem naming one query parameter, shaped like FastAPI's own.
    Its type is ``rule``: the value has the documented form, but the API
    refuses it for what no schema states (a cursor it did not issue)."""
    return invalid([{"field": f"query.{field}", "message": message, "type": "rule"}])


def cursor_scope(**filters: Any) -> str:
    """A short fingerprint of the filters a cursor belongs to."""
    canonical = orjson.dumps(
        {k: v for k, v in filters.items() if v is not None}, option=orjson.OPT_SORT_KEYS, default=str
    )
    return hashlib.sha256(canonical).hexdigest()[:16]


def encode_cursor(after: Any, scope: str) -> str:
    raw = orjson.dumps({"a": after, "s": scope})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, scope: str) -> Any:
    """The sort key stored in ``cursor``; 422 if it is malformed or belongs to other filters."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = orjson.loads(raw)
        after, issued_for = body["a"], body["s"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise invalid_query("cursor", "Not a cursor this API issued.") from None
    if issued_for != scope:
        raise invalid_query("cursor", "This cursor was issued for other filters; start again without it.")
    return after


@dataclass(frozen=True)
class PageParams:
    cursor: str | None
    limit: int

    def after(self, scope: str) -> Any:
        """The sort key to continue after (None: first page)."""
        return None if self.cursor is None else decode_cursor(self.cursor, scope)


class PageQuery(BaseModel):
    """The ``cursor`` and ``limit`` query parameters, as a model of query
    parameters (``query: Annotated[SomeQuery, Query()]``, ``SomeQuery`` adding
    a list's filters): pydantic checks a busy list's parameters in one call,
    not FastAPI one at a time (``services/enrollment``'s participants)."""

    cursor: str | None = Field(
        None,
        max_length=1024,
        pattern=CURSOR_PATTERN,
        description="Opaque cursor from a previous page's next_cursor. Only a cursor this API issued for the "
        "same filters is read: any other is a 422 naming query.cursor (type rule).",
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")

    def page(self) -> PageParams:
        return PageParams(self.cursor, self.limit)


async def page_params(query: Annotated[PageQuery, Query()]) -> PageParams:
    """FastAPI dependency: the ``cursor`` and ``limit`` query parameters (a
    list with no filters of its own, or whose filters are parameters apart)."""
    return query.page()


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None = None

    @classmethod
    def of(
        cls,
        rows: Sequence[R],
        limit: int,
        scope: str,
        *,
        key: Callable[[R], Any],
        item: Callable[[R], T],
    ) -> Page[T]:
        """Build a page from up to ``limit + 1`` rows fetched in sort order
        (the extra row only says that there is a next page)."""
        shown = rows[:limit]
        more = len(rows) > limit
        return cls(
            items=[item(r) for r in shown],
            next_cursor=encode_cursor(key(shown[-1]), scope) if more and shown else None,
        )


#: The order of a keyset list: (column, how a cursor's text reads back as the
#: column's value), e.g. ``(("starts_at", datetime.fromisoformat), ("session_id", UUID))``.
#: Columns of the read model's own content, ending with a unique one, never a
#: row number that a rebuild renumbers: a cursor then survives ``binome replay``.
Order = tuple[tuple[str, Callable[[str], Any]], ...]


def cursor_key(row: Any, order: Order) -> list[str]:
    """The cursor's sort key of ``row``: each order column as text."""
    return [row[c].isoformat() if hasattr(row[c], "isoformat") else str(row[c]) for c, _ in order]


def cursor_values(after: Any, order: Order) -> list[Any]:
    """The column values a cursor's key holds; 422 naming ``query.cursor`` if it holds other things."""
    try:
        if not isinstance(after, list) or len(after) != len(order):
            raise ValueError
        return [parse(text) for (_, parse), text in zip(order, after, strict=True)]
    except (TypeError, ValueError, AttributeError):
        raise invalid_query("cursor", "Not a cursor this API issued.") from None



def order_by(order: Order, *, descending: bool = False) -> str:
    """The ``ORDER BY`` list of ``order``, e.g. ``starts_at, session_id``
    (``descending``: every column from the greatest, newest first)."""
    return ", ".join(f"{column} DESC" if descending else column for column, _ in order)


def after_condition(order: Order, after: Any, param: Callable[[Any], str], *, descending: bool = False) -> str:
    """The SQL condition "rows after the cursor's key" (a row comparison), each
    value numbered by the caller's ``param``; 422 naming ``query.cursor`` if
    the cursor holds other things. ``descending`` as in ``order_by``."""
    values = ", ".join(param(value) for value in cursor_values(after, order))
    return f"({', '.join(column for column, _ in order)}) {'<' if descending else '>'} ({values})"


def keyed_page(rows: Sequence[R], page: PageParams, scope: str, order: Order, item: Callable[[R], T]) -> Page[T]:
    """``Page.of`` for rows fetched in ``order`` (their cursor is their key in it)."""
    return Page[Any].of(rows, page.limit, scope, key=lambda r: cursor_key(r, order), item=item)
