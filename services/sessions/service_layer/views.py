"""The read side, as the caller may see it, and the reads commands need.

Visibility: an HR admin (and a Binome service) sees the whole organisation;
a regional committee the objects of its countries (a pair's, session's or
check-in's country is the pair's home, the mentee's; a mentor's budget is
filed under the mentor's country); a participant what concerns itself (token
subject = participant id). Anything else is "not found": a 404 never tells a
caller that an object it may not see exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.api.pagination import Order, Page, PageParams, after_condition, cursor_scope, keyed_page, order_by
from libs.auth.principal import PARTICIPANT, REGIONAL_COMMITTEE, Principal, normalise_country
from libs.database import Where
from libs.eventstore.migrations import check_schema_name
from services.sessions.domain.errors import NotFound
from services.sessions.domain.values import DEFAULT_RULES, Busy, Pair, PairStatus, SessionRules, Slot

Executor = asyncpg.Connection | asyncpg.Pool


def participant_id_of(principal: Principal) -> UUID | None:
    """The participant a token speaks for (role ``participant``, subject = id)."""
    if not principal.has_role(PARTICIPANT):
        return None
    try:
        return UUID(principal.subject)
    except ValueError:
        return None


def may_see(principal: Principal, organisation: str, country: str, people: Iterable[UUID]) -> bool:
    if organisation != principal.organisation:
        return False
    return principal.can_see_country(country) or participant_id_of(principal) in set(people)


def scoped(principal: Principal, country: str | None, people_columns: Sequence[str]) -> Where:
    """Rows of the caller's organisation it may see; a ``country`` filter it
    may not see is a 404."""
    where = Where()
    where.add(f"organisation = {where.param(principal.organisation)}")
    if country is not None:
        country = normalise_country(country)
        if not principal.can_see_country(country) and participant_id_of(principal) is None:
            raise NotFound("country", country)
        where.add(f"country = {where.param(country)}")
    if principal.sees_all_countries():
        return where
    grants = []
    if principal.has_role(REGIONAL_COMMITTEE):
        grants.append(f"country = ANY({where.param(sorted(principal.countries))}::text[])")
    me = participant_id_of(principal)
    if me is not None:
        me_param = where.param(me)
        grants += [f"{column} = {me_param}" for column in people_columns]
    where.add(f"({' OR '.join(grants) or 'false'})")
    return where


@dataclass(frozen=True)
class SessionFilters:
    pair_id: UUID | None = None
    participant_id: UUID | None = None
    programme_id: UUID | None = None
    country: str | None = None
    status: str | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None


@dataclass(frozen=True)
class CheckInFilters:
    pair_id: UUID | None = None
    participant_id: UUID | None = None
    programme_id: UUID | None = None
    country: str | None = None
    member: str | None = None


@dataclass(frozen=True)
class BudgetFilters:
    month: date | None = None
    mentor_id: UUID | None = None
    programme_id: UUID | None = None
    country: str | None = None
    over_budget: bool | None = None


def _pair(row: asyncpg.Record) -> Pair:
    return Pair(**{**dict(row), "status": PairStatus(row["status"])})


def budget_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "month": row["month"].strftime("%Y-%m"),
        "remaining_minutes": max(row["budget_minutes"] - row["total_minutes"], 0),
    }


class Views:
    def __init__(self, schema: str) -> None:
        self.s = check_schema_name(schema)
        self._pair_columns = (
            "pair_id, organisation, programme_id, wave_id, country, mentee_id, mentor_id, mentor_country, status"
        )

    # -- what commands read ----------------------------------------------------------

    async def pair(self, db: Executor, pair_id: UUID) -> Pair | None:
        row = await db.fetchrow(f"SELECT {self._pair_columns} FROM {self.s}.pairs WHERE pair_id = $1", pair_id)
        return None if row is None else _pair(row)

    async def themes(self, db: Executor, programme_id: UUID) -> frozenset[str] | None:
        """The programme's theme codes; None while enrollment's event has not arrived."""
        themes = await db.fetchval(f"SELECT themes FROM {self.s}.programmes WHERE programme_id = $1", programme_id)
        return None if themes is None else frozenset(themes)

    async def programme_organisation(self, db: Executor, programme_id: UUID) -> str | None:
        return await db.fetchval(f"SELECT organisation FROM {self.s}.programmes WHERE programme_id = $1", programme_id)

    async def rules(self, db: Executor, programme_id: UUID) -> SessionRules:
        row = await db.fetchrow(
            f"""SELECT budget_share_percent, weekly_hours, late_cancellation_hours
                FROM {self.s}.session_settings WHERE programme_id = $1""",
            programme_id,
        )
        return DEFAULT_RULES if row is None else SessionRules(*row)

    async def lock_people(self, conn: asyncpg.Connection, people: Iterable[UUID]) -> None:
        """Serialise the commands touching these people's calendars and budgets
        until commit (sorted: two commands never wait on each other in a cycle)."""
        for person in sorted(set(people)):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{self.s}.person.{person}")

    async def busy(self, db: Executor, people: Sequence[UUID], window: Slot) -> list[Busy]:
        """Sessions occupying any of ``people`` during ``window``: held ones, and
        scheduled ones of pairs still formed (a dissolved pair's leftover
        sessions no longer block anyone's calendar)."""
        rows = await db.fetch(
            f"""SELECT s.session_id, s.mentee_id, s.mentor_id, s.starts_at, s.ends_at
                FROM {self.s}.sessions s LEFT JOIN {self.s}.pairs p USING (pair_id)
                WHERE (s.mentee_id = ANY($1::uuid[]) OR s.mentor_id = ANY($1::uuid[]))
                  AND s.starts_at < $3 AND s.ends_at > $2
                  AND (s.status = 'held' OR (s.status = 'scheduled' AND p.status = 'formed'))""",
            list(people),
            window.starts_at,
            window.ends_at,
        )
        return [
            Busy(r["session_id"], person, Slot(r["starts_at"], (r["ends_at"] - r["starts_at"]) // timedelta(minutes=1)))
            for r in rows
            for person in (r["mentee_id"], r["mentor_id"])
            if person in people
        ]

    async def held_in_pair(self, db: Executor, pair_id: UUID) -> int:
        return await db.fetchval(
            f"SELECT count(*) FROM {self.s}.sessions WHERE pair_id = $1 AND status = 'held'", pair_id
        )

    # -- single objects ----------------------------------------------------------------

    async def visible_pair(self, db: Executor, principal: Principal, pair_id: UUID) -> Pair:
        pair = await self.pair(db, pair_id)
        if pair is None or not may_see(principal, pair.organisation, pair.country, pair.people):
            raise NotFound("pair", pair_id)
        return pair

    async def pair_doc(self, db: Executor, principal: Principal, pair_id: UUID) -> dict[str, Any]:
        pair = await self.visible_pair(db, principal, pair_id)
        counts = await db.fetch(
            f"SELECT status, count(*) AS n FROM {self.s}.sessions WHERE pair_id = $1 GROUP BY status", pair_id
        )
        doc = {k: v for k, v in vars(pair).items() if k != "organisation"}
        return {**doc, "sessions": {r["status"]: r["n"] for r in counts}}

    async def session(self, db: Executor, principal: Principal, session_id: UUID) -> dict[str, Any]:
        return await self._doc(db, principal, "sessions", "session_id", session_id, "session")

    async def check_in(self, db: Executor, principal: Principal, check_in_id: UUID) -> dict[str, Any]:
        return await self._doc(db, principal, "check_ins", "check_in_id", check_in_id, "check-in")

    async def _doc(
        self, db: Executor, principal: Principal, table: str, key: str, value: UUID, kind: str
    ) -> dict[str, Any]:
        row = await db.fetchrow(
            f"SELECT organisation, country, mentee_id, mentor_id, doc::text FROM {self.s}.{table} WHERE {key} = $1",
            value,
        )
        if row is None or not may_see(principal, row["organisation"], row["country"], (row[2], row[3])):
            raise NotFound(kind, value)
        return orjson.loads(row["doc"])

    async def mentor_budget(
        self, db: Executor, principal: Principal, mentor_id: UUID, month: date
    ) -> dict[str, Any]:
        """A mentor's month; a month with nothing logged has the programme's budget and zeros."""
        home = await self._visible_mentor(db, principal, mentor_id)
        row = await db.fetchrow(
            f"SELECT {BUDGET_COLUMNS} FROM {self.s}.mentor_months WHERE mentor_id = $1 AND month = $2",
            mentor_id,
            month,
        )
        if row is not None:
            return budget_doc(dict(row))
        budget = (await self.rules(db, home["programme_id"])).monthly_budget_minutes
        empty = {"session_minutes": 0, "preparation_minutes": 0, "total_minutes": 0, "entries": 0, "version": 0}
        return budget_doc(
            {
                "mentor_id": mentor_id,
                "month": month,
                "programme_id": home["programme_id"],
                "country": home["country"],
                "budget_minutes": budget,
                **empty,
                "over_budget": False,
                "exceeded_at": None,
            }
        )

    async def rules_doc(self, db: Executor, principal: Principal, programme_id: UUID) -> dict[str, Any]:
        organisation = await self.programme_organisation(db, programme_id)
        if organisation != principal.organisation:
            raise NotFound("programme", programme_id)
        row = await db.fetchrow(
            f"""SELECT budget_share_percent, weekly_hours, monthly_budget_minutes, late_cancellation_hours,
                       version, updated_at, updated_by::text FROM {self.s}.session_settings WHERE programme_id = $1""",
            programme_id,
        )
        if row is None:
            rules = DEFAULT_RULES
            return {
                "programme_id": programme_id,
                **vars(rules),
                "monthly_budget_minutes": rules.monthly_budget_minutes,
                "version": 0,
                "updated_at": None,
                "updated_by": None,
            }
        return {"programme_id": programme_id, **dict(row), "updated_by": orjson.loads(row["updated_by"])}

    # -- lists ---------------------------------------------------------------------------

    async def sessions(
        self, db: Executor, principal: Principal, filters: SessionFilters, page: PageParams
    ) -> Page[Any]:
        scope = cursor_scope(kind="sessions", **vars(filters))
        where = await self._people_filters(db, principal, filters.country, filters.pair_id, filters.participant_id)
        for column, value in (("programme_id", filters.programme_id), ("status", filters.status)):
            if value is not None:
                where.add(f"{column} = {where.param(value)}")
        if filters.starts_from is not None:
            where.add(f"starts_at >= {where.param(filters.starts_from)}")
        if filters.starts_before is not None:
            where.add(f"starts_at < {where.param(filters.starts_before)}")
        rows = await self._by_key(db, "sessions", "doc::text AS doc", where, page, scope, SESSION_ORDER)
        return keyed_page(rows, page, scope, SESSION_ORDER, lambda r: orjson.loads(r["doc"]))

    async def check_ins(
        self, db: Executor, principal: Principal, filters: CheckInFilters, page: PageParams
    ) -> Page[Any]:
        scope = cursor_scope(kind="check-ins", **vars(filters))
        where = await self._people_filters(db, principal, filters.country, filters.pair_id, filters.participant_id)
        for column, value in (("programme_id", filters.programme_id), ("member", filters.member)):
            if value is not None:
                where.add(f"{column} = {where.param(value)}")
        rows = await self._by_key(db, "check_ins", "doc::text AS doc", where, page, scope, CHECK_IN_ORDER)
        return keyed_page(rows, page, scope, CHECK_IN_ORDER, lambda r: orjson.loads(r["doc"]))

    async def _visible_mentor(self, db: Executor, principal: Principal, mentor_id: UUID) -> asyncpg.Record:
        """The mentor's home (its latest pair: organisation, programme, country); 404 when the caller may not see it."""
        home = await db.fetchrow(
            f"""SELECT organisation, programme_id, mentor_country AS country FROM {self.s}.pairs
                WHERE mentor_id = $1 ORDER BY updated_at DESC LIMIT 1""",
            mentor_id,
        )
        if home is None or not may_see(principal, home["organisation"], home["country"], (mentor_id,)):
            raise NotFound("mentor", mentor_id)
        return home

    async def budgets(self, db: Executor, principal: Principal, filters: BudgetFilters, page: PageParams) -> Page[Any]:
        scope = cursor_scope(kind="budgets", **vars(filters))
        where = scoped(principal, filters.country, ("mentor_id",))
        if filters.mentor_id is not None:  # naming a mentor the caller may not see is a 404, as on its budget
            await self._visible_mentor(db, principal, filters.mentor_id)
        for column in ("month", "mentor_id", "programme_id", "over_budget"):
            value = getattr(filters, column)
            if value is not None:
                where.add(f"{column} = {where.param(value)}")
        rows = await self._by_key(db, "mentor_months", BUDGET_COLUMNS, where, page, scope, BUDGET_ORDER)
        return keyed_page(rows, page, scope, BUDGET_ORDER, _budget_item)

    async def _people_filters(
        self,
        db: Executor,
        principal: Principal,
        country: str | None,
        pair_id: UUID | None,
        participant_id: UUID | None,
    ) -> Where:
        """Scope plus the pair and person filters; naming one the caller may not see is a 404."""
        where = scoped(principal, country, ("mentee_id", "mentor_id"))
        if pair_id is not None:
            await self.visible_pair(db, principal, pair_id)
            where.add(f"pair_id = {where.param(pair_id)}")
        if participant_id is not None:
            await self._visible_person(db, principal, participant_id)
            person = where.param(participant_id)
            where.add(f"(mentee_id = {person} OR mentor_id = {person})")
        return where

    async def _visible_person(self, db: Executor, principal: Principal, participant_id: UUID) -> None:
        rows = await db.fetch(
            f"SELECT organisation, country, mentee_id, mentor_id FROM {self.s}.pairs"
            " WHERE mentee_id = $1 OR mentor_id = $1",
            participant_id,
        )
        if not any(may_see(principal, r[0], r[1], (r[2], r[3])) for r in rows):
            raise NotFound("participant", participant_id)

    async def _by_key(
        self, db: Executor, table: str, columns: str, where: Where, page: PageParams, scope: str, order: Order
    ) -> list[asyncpg.Record]:
        """One page in ``order``: columns of the read model's own content, never
        ``row_id``, which a rebuild (``binome replay``) renumbers; so a cursor
        held across a rebuild neither skips nor repeats."""
        keys = order_by(order)
        after = page.after(scope)
        if after is not None:
            where.add(after_condition(order, after, where.param))
        return await db.fetch(
            f"SELECT {keys}, {columns} FROM {self.s}.{table} WHERE {where.sql()}"
            f" ORDER BY {keys} LIMIT {where.param(page.limit + 1)}",
            *where.args,
        )


SESSION_ORDER: Order = (("starts_at", datetime.fromisoformat), ("session_id", UUID))
CHECK_IN_ORDER: Order = (("recorded_at", datetime.fromisoformat), ("check_in_id", UUID))
BUDGET_ORDER: Order = (("month", date.fromisoformat), ("mentor_id", UUID))


BUDGET_COLUMNS = (
    "mentor_id, month, programme_id, country, budget_minutes, total_minutes, session_minutes,"
    " preparation_minutes, entries, over_budget, exceeded_at, version"
)


def _budget_item(row: asyncpg.Record) -> dict[str, Any]:
    return budget_doc(dict(row.items()))
