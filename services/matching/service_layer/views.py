"""The read side: runs and pairs from the read tables, as the caller may see
them (see ``access``). Lists are keyset-paginated on each row's own id (never
``row_id``, which a rebuild renumbers); a filter on
a country or wave the caller may not see is a 404, like the object itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.api.pagination import Order, Page, PageParams, after_condition, cursor_scope, keyed_page, order_by
from libs.auth.principal import REGIONAL_COMMITTEE, Principal, normalise_country
from libs.database import Where
from libs.eventstore.migrations import check_schema_name
from services.matching.domain.errors import NotFound
from services.matching.service_layer.access import is_self

Executor = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class PairFilters:
    programme_id: UUID | None = None
    wave_id: UUID | None = None
    country: str | None = None
    status: str | None = None
    participant_id: UUID | None = None


@dataclass(frozen=True)
class RunFilters:
    programme_id: UUID | None = None
    wave_id: UUID | None = None


class Views:
    def __init__(self, schema: str) -> None:
        self.s = check_schema_name(schema)

    # -- one object -------------------------------------------------------------------

    async def pair(self, db: Executor, principal: Principal, pair_id: UUID) -> dict[str, Any]:
        return orjson.loads((await self.pair_text(db, principal, pair_id))[0])

    async def pair_text(self, db: Executor, principal: Principal, pair_id: UUID) -> tuple[str, str]:
        """The pair's document as stored (JSON text, for the API to check and
        encode in one pass) and its version, as the document holds it."""
        return self.visible_pair(principal, pair_id, await self.pair_row(db, pair_id))

    async def pair_row(self, db: Executor, pair_id: UUID) -> asyncpg.Record | None:
        """The pair's row as ``visible_pair`` reads it, whoever asks (None: no such pair)."""
        return await db.fetchrow(
            f"""SELECT organisation, country, mentee_id, mentor_id, doc::text AS doc, doc->>'version' AS version
                FROM {self.s}.pairs WHERE pair_id = $1""",
            pair_id,
        )

    @staticmethod
    def visible_pair(principal: Principal, pair_id: UUID, row: asyncpg.Record | None) -> tuple[str, str]:
        """``pair_text`` of a row read before: (document, version), or NotFound
        unless the caller sees the pair's country or is one of its two people."""
        if row is None or row["organisation"] != principal.organisation:
            raise NotFound("pair", pair_id)
        if not (
            principal.can_see_country(row["country"])
            or is_self(principal, row["mentee_id"])
            or is_self(principal, row["mentor_id"])
        ):
            raise NotFound("pair", pair_id)
        return row["doc"], row["version"]

    async def run(self, db: Executor, principal: Principal, run_id: UUID) -> dict[str, Any]:
        row = await db.fetchrow(
            f"SELECT organisation, countries, doc::text AS doc FROM {self.s}.runs WHERE run_id = $1", run_id
        )
        if row is None or not all(principal.can_see(row["organisation"], c) for c in row["countries"]):
            raise NotFound("run", run_id)
        return orjson.loads(row["doc"])

    async def exclusion(self, db: Executor, exclusion_id: UUID) -> dict[str, Any]:
        """An exclusion just recorded (its command checked who may see it)."""
        return orjson.loads(
            await db.fetchval(f"SELECT doc::text FROM {self.s}.exclusions WHERE exclusion_id = $1", exclusion_id)
        )

    # -- lists ------------------------------------------------------------------------

    async def pairs(self, db: Executor, principal: Principal, filters: PairFilters, page: PageParams) -> Page[Any]:
        where = self._organisation(principal)
        if self._by_country(principal):
            self._countries(where, principal, filters.country)
        else:
            # A participant lists only the pairs it is in.
            me = where.param(_as_uuid(principal.subject))
            where.add(f"(mentee_id = {me} OR mentor_id = {me})")
            if filters.country is not None:
                where.add(f"country = {where.param(normalise_country(filters.country))}")
        if filters.wave_id is not None:
            await self._check_wave(db, principal, filters.wave_id)
            where.add(f"wave_id = {where.param(filters.wave_id)}")
        if filters.programme_id is not None:
            where.add(f"programme_id = {where.param(filters.programme_id)}")
        if filters.status is not None:
            where.add(f"status = {where.param(filters.status)}")
        if filters.participant_id is not None:
            await self._check_participant(db, principal, filters.participant_id)
            who = where.param(filters.participant_id)
            where.add(f"(mentee_id = {who} OR mentor_id = {who})")
        return await self._page(db, "pairs", where, page, cursor_scope(kind="pairs", **vars(filters)), PAIR_ORDER)

    async def runs(self, db: Executor, principal: Principal, filters: RunFilters, page: PageParams) -> Page[Any]:
        where = self._organisation(principal)
        if not principal.sees_all_countries():
            # A committee sees the runs of its countries only (never a cross-border one beyond them).
            where.add(f"countries <@ {where.param(sorted(principal.countries))}::text[]")
        if filters.programme_id is not None:
            where.add(f"programme_id = {where.param(filters.programme_id)}")
        if filters.wave_id is not None:
            await self._check_wave(db, principal, filters.wave_id)
            where.add(f"{where.param(filters.wave_id)}::uuid = ANY(wave_ids)")
        return await self._page(db, "runs", where, page, cursor_scope(kind="runs", **vars(filters)), RUN_ORDER)

    async def _check_wave(self, db: Executor, principal: Principal, wave_id: UUID) -> None:
        """A filter naming a wave of another country (or none) is a 404."""
        row = await db.fetchrow(f"SELECT organisation, country FROM {self.s}.waves WHERE wave_id = $1", wave_id)
        if row is None or row["organisation"] != principal.organisation:
            raise NotFound("wave", wave_id)
        if self._by_country(principal) and not principal.can_see_country(row["country"]):
            raise NotFound("wave", wave_id)

    async def _check_participant(self, db: Executor, principal: Principal, participant_id: UUID) -> None:
        """A filter naming a participant the caller may not see is a 404, like a
        wave's: another organisation's, another country's (unless in a pair of
        the caller's countries), or, for a participant, anyone but itself."""
        if not self._by_country(principal):
            if participant_id != _as_uuid(principal.subject):
                raise NotFound("participant", participant_id)
            return
        row = await db.fetchrow(
            f"SELECT organisation, country FROM {self.s}.candidates WHERE participant_id = $1", participant_id
        )
        if row is not None and row["organisation"] == principal.organisation and principal.can_see_country(row["country"]):
            return
        paired = await db.fetch(
            f"SELECT country FROM {self.s}.pairs WHERE organisation = $1 AND (mentee_id = $2 OR mentor_id = $2)",
            principal.organisation,
            participant_id,
        )
        if not any(principal.can_see_country(r["country"]) for r in paired):
            raise NotFound("participant", participant_id)

    @staticmethod
    def _by_country(principal: Principal) -> bool:
        """HR roles see by country; anyone else (a participant) only its own pairs."""
        return principal.sees_all_countries() or principal.has_role(REGIONAL_COMMITTEE)

    @staticmethod
    def _organisation(principal: Principal) -> Where:
        """Conditions joined by AND, the first one the principal's organisation."""
        where = Where()
        where.add("organisation = $?", principal.organisation)
        return where

    def _countries(self, where: Where, principal: Principal, country: str | None) -> None:
        if country is not None:
            country = normalise_country(country)
            if not principal.can_see_country(country):
                raise NotFound("country", country)
            where.add(f"country = {where.param(country)}")
        elif not principal.sees_all_countries():
            where.add(f"country = ANY({where.param(sorted(principal.countries))}::text[])")

    async def _page(
        self, db: Executor, table: str, where: Where, page: PageParams, scope: str, order: Order
    ) -> Page[Any]:
        after = page.after(scope)
        if after is not None:
            where.add(after_condition(order, after, where.param))
        keys = order_by(order)
        limit = where.param(page.limit + 1)
        rows = await db.fetch(
            f"SELECT {keys}, doc::text AS doc FROM {self.s}.{table} WHERE {where.sql()} ORDER BY {keys} LIMIT {limit}",
            *where.args,
        )
        return keyed_page(rows, page, scope, order, lambda r: orjson.loads(r["doc"]))


PAIR_ORDER: Order = (("pair_id", UUID),)
RUN_ORDER: Order = (("run_id", UUID),)


def _as_uuid(subject: str) -> UUID | None:
    try:
        return UUID(subject)
    except ValueError:
        return None
