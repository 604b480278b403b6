"""The delivery log and a participant's preferences as the API reads and
writes them (the entrypoints parse, call these and answer).

The log pages newest first by its own content (``LOG_ORDER``: when a message
was queued, then its id), like every list (libs/api/pagination): a cursor
holds that key, never a row number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.api.pagination import Order, Page, PageParams, after_condition, cursor_scope, keyed_page, order_by
from libs.api.problems import Problem
from libs.auth.principal import Principal, normalise_country
from libs.database import Where
from libs.eventstore.migrations import check_schema_name

Executor = asyncpg.Connection | asyncpg.Pool

#: The delivery log's order, newest first (``descending``).
LOG_ORDER: Order = (("queued_at", datetime.fromisoformat), ("message_id", UUID))


def visible(who: Principal, country: str | None) -> Where:
    """The messages the caller may see: its organisation, and a committee's
    countries; a ``country`` it may not see is a 404."""
    where = Where()
    where.add(f"organisation = {where.param(who.organisation)}")
    if country is not None:
        country = normalise_country(country)
        if not who.can_see_country(country):
            raise Problem(404, detail=f"country {country} not found")
        where.add(f"country = {where.param(country)}")
    elif not who.sees_all_countries():
        where.add(f"country = ANY({where.param(sorted(who.countries))}::text[])")
    return where


class DeliveryLog:
    def __init__(self, schema: str) -> None:
        self.s = check_schema_name(schema)

    async def summary(self, db: Executor, who: Principal, country: str | None) -> dict[str, Any]:
        where = visible(who, country)
        row = await db.fetchrow(
            f"""SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
                       count(*) FILTER (WHERE status = 'delivered') AS delivered,
                       count(*) FILTER (WHERE status = 'failed') AS failed,
                       count(*) FILTER (WHERE status = 'withdrawn') AS withdrawn,
                       count(*) FILTER (WHERE with_invite) AS invites
                FROM {self.s}.messages WHERE {where.sql()}""",
            *where.args,
        )
        return dict(row)

    async def page(
        self, db: Executor, who: Principal, country: str | None, status: str | None, kind: str | None, page: PageParams
    ) -> Page[dict[str, Any]]:
        """The caller's messages, newest first."""
        where = visible(who, country)
        for column, value in (("status", status), ("kind", kind)):
            if value is not None:
                where.add(f"{column} = {where.param(value)}")
        scope = cursor_scope(kind="messages", country=normalise_country(country) if country else None,
                             status=status, message_kind=kind)  # fmt: skip
        after = page.after(scope)
        if after is not None:
            where.add(after_condition(LOG_ORDER, after, where.param, descending=True))
        rows = await db.fetch(
            f"""SELECT message_id, recipient_id, kind, country, language, with_invite, status, attempts,
                       last_error, queued_at, finished_at
                FROM {self.s}.messages WHERE {where.sql()}
                ORDER BY {order_by(LOG_ORDER, descending=True)} LIMIT {page.limit + 1}""",
            *where.args,
        )
        return keyed_page(rows, page, scope, LOG_ORDER, dict)

    async def preferences(self, db: Executor, who: Principal, participant_id: UUID) -> dict[str, Any]:
        """A participant's preferences (defaults until they change them)."""
        row = await db.fetchrow(
            f"SELECT language, muted_kinds, updated_at FROM {self.s}.preferences"
            " WHERE participant_id = $1 AND organisation = $2",
            participant_id,
            who.organisation,
        )
        if row is None:
            return {"participant_id": participant_id, "language": None, "muted_kinds": [], "updated_at": None}
        return {"participant_id": participant_id, **dict(row)}

    async def set_preferences(
        self, pool: asyncpg.Pool, who: Principal, participant_id: UUID, language: str | None, muted: list[str], at: datetime
    ) -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"""INSERT INTO {self.s}.preferences (participant_id, organisation, language, muted_kinds, updated_at)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (participant_id) DO UPDATE SET language = EXCLUDED.language,
                        muted_kinds = EXCLUDED.muted_kinds, updated_at = EXCLUDED.updated_at
                    WHERE {self.s}.preferences.organisation = EXCLUDED.organisation""",
                participant_id, who.organisation, language, sorted(set(muted)), at,
            )  # fmt: skip
            return await self.preferences(conn, who, participant_id)
