"""The read side: programmes, waves, participants and funnels from the read
tables, as the caller may see them.

Visibility: a global HR admin (and a Binome service) sees the whole
organisation; a regional committee the waves and participants of its
countries; a participant its own record (and its programme). Anything else,
and anything of another organisation, is "not found": a 404 never tells a
caller that an object it may not see exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.api.pagination import Order, Page, PageParams, after_condition, cursor_scope, keyed_page, order_by
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, SERVICE, Principal, normalise_country
from libs.database import Where
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.vault import KeyVault
from services.enrollment.adapters.directory import DirectoryPeople
from services.enrollment.domain.errors import NotFound

Executor = asyncpg.Connection | asyncpg.Pool


def is_self(principal: Principal, participant_id: UUID | str, organisation: str) -> bool:
    """A participant acting on its own record (token subject = participant id)."""
    return (
        principal.has_role(PARTICIPANT)
        and principal.subject == str(participant_id)
        and principal.organisation == organisation
    )


def visible_countries(principal: Principal) -> list[str] | None:
    """None: every country of the organisation; else the only ones visible."""
    return None if principal.sees_all_countries() else sorted(principal.countries)


@dataclass(frozen=True)
class WaveFilters:
    programme_id: UUID | None = None
    country: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class ParticipantsPage:
    #: Each participant's document as JSON text.
    page: Page[Any]
    #: Whether a document shows an erasure's progress (read from the key vault,
    #: whose changes nobody announces: such a page is never held).
    shows_erasure: bool

    def holdable(self) -> bool:
        return not self.shows_erasure


@dataclass(frozen=True)
class ParticipantFilters:
    programme_id: UUID | None = None
    wave_id: UUID | None = None
    country: str | None = None
    role: str | None = None
    status: str | None = None
    theme: str | None = None
    matchable: bool | None = None


class Views:
    def __init__(self, schema: str, vault: KeyVault | None = None) -> None:
        self.s = check_schema_name(schema)
        #: Where an erasure's progress on disk is kept (libs/gdpr/compaction.py).
        self.vault = vault
        #: The HR directory as enrollment keeps it (enrolments by employee reference).
        self.directory = DirectoryPeople(schema)

    # -- single objects -------------------------------------------------------------

    async def programme(self, db: Executor, principal: Principal, programme_id: UUID) -> dict[str, Any]:
        row = await db.fetchrow(
            f"SELECT organisation, (to_jsonb(p) - 'row_id' - 'organisation')::text AS doc"
            f" FROM {self.s}.programmes p WHERE programme_id = $1",
            programme_id,
        )
        if row is None or row["organisation"] != principal.organisation:
            raise NotFound("programme", programme_id)
        if not principal.has_role(HR_ADMIN, REGIONAL_COMMITTEE, SERVICE) and not await self._own_programme(
            db, principal, programme_id
        ):
            raise NotFound("programme", programme_id)
        return orjson.loads(row["doc"])

    async def _own_programme(self, db: Executor, principal: Principal, programme_id: UUID) -> bool:
        try:
            participant_id = UUID(principal.subject)
        except ValueError:
            return False
        return bool(
            await db.fetchval(
                f"SELECT true FROM {self.s}.participants"
                " WHERE participant_id = $1 AND programme_id = $2 AND organisation = $3",
                participant_id,
                programme_id,
                principal.organisation,
            )
        )

    async def wave(self, db: Executor, principal: Principal, wave_id: UUID) -> dict[str, Any]:
        row = await db.fetchrow(
            f"SELECT organisation, country, (to_jsonb(w) - 'row_id' - 'organisation')::text AS doc"
            f" FROM {self.s}.waves w WHERE wave_id = $1",
            wave_id,
        )
        if row is None or not principal.can_see(row["organisation"], row["country"]):
            raise NotFound("wave", wave_id)
        return orjson.loads(row["doc"])

    async def participant(self, db: Executor, principal: Principal, participant_id: UUID) -> dict[str, Any]:
        row = await db.fetchrow(
            f"SELECT organisation, country, doc_text AS doc FROM {self.s}.participants WHERE participant_id = $1",
            participant_id,
        )
        if row is None or not (
            principal.can_see(row["organisation"], row["country"])
            or is_self(principal, participant_id, row["organisation"])
        ):
            raise NotFound("participant", participant_id)
        doc = orjson.loads(row["doc"])
        await self._erasure_progress([doc])
        return doc

    async def _erasure_progress(self, docs: list[dict[str, Any]]) -> None:
        """Each erased participant's erasure with its progress on disk (the vault knows it)."""
        erased = {UUID(d["participant_id"]): d for d in docs if d.get("erasure") is not None}
        if erased and self.vault is not None:
            for participant_id, status in (await self.vault.erasure_statuses(erased)).items():
                erased[participant_id]["erasure"].update(status)

    # -- lists ------------------------------------------------------------------------

    async def programmes(self, db: Executor, principal: Principal, page: PageParams) -> Page[Any]:
        scope = cursor_scope(kind="programmes")
        query = Where()
        query.add("organisation = $?", principal.organisation)
        return await self._page(
            db, f"{self.s}.programmes", "(to_jsonb(t) - 'row_id' - 'organisation')", query, page, scope, PROGRAMME_ORDER
        )

    async def waves(self, db: Executor, principal: Principal, filters: WaveFilters, page: PageParams) -> Page[Any]:
        scope = cursor_scope(kind="waves", **vars(filters))
        query = self._scoped(principal, filters.country)
        if filters.programme_id is not None:
            query.add("programme_id = $?", filters.programme_id)
        if filters.status is not None:
            query.add("status = $?", filters.status)
        return await self._page(
            db, f"{self.s}.waves", "(to_jsonb(t) - 'row_id' - 'organisation')", query, page, scope, WAVE_ORDER
        )

    async def participants(
        self, db: Executor, principal: Principal, filters: ParticipantFilters, page: PageParams
    ) -> ParticipantsPage:
        scope = cursor_scope(kind="participants", **vars(filters))
        query = self._scoped(principal, filters.country)
        if filters.wave_id is not None:
            await self.wave(db, principal, filters.wave_id)  # 404 unless visible
            query.add("wave_id = $?", filters.wave_id)
        for column in ("programme_id", "role", "status", "matchable"):
            value = getattr(filters, column)
            if value is not None:
                query.add(f"{column} = $?", value)
        if filters.theme is not None:
            query.add("themes @> ARRAY[$?::text]", filters.theme)
        found = await self._page(
            db, f"{self.s}.participants", "t.doc_text", query, page, scope, PARTICIPANT_ORDER,
            item=lambda r: r, also="jsonb_typeof(t.doc->'erasure') = 'object' AS erased",
        )  # fmt: skip
        # Documents stay JSON text (written once, `doc_text`) for the API to
        # check and encode in one pass; only an erased person's is read, to
        # add the erasure's progress.
        erased = {i: orjson.loads(row["doc"]) for i, row in enumerate(found.items) if row["erased"]}
        await self._erasure_progress(list(erased.values()))
        found.items = [
            orjson.dumps(erased[i]).decode() if i in erased else row["doc"] for i, row in enumerate(found.items)
        ]
        return ParticipantsPage(found, shows_erasure=bool(erased))

    def _scoped(self, principal: Principal, country: str | None) -> Where:
        """Organisation and visible countries; filtering on an invisible country is a 404."""
        query = Where()
        query.add("organisation = $?", principal.organisation)
        countries = visible_countries(principal)
        if country is not None:
            country = normalise_country(country)
            if countries is not None and country not in countries:
                raise NotFound("country", country)
            query.add("country = $?", country)
        elif countries is not None:
            query.add("country = ANY($?::text[])", countries)
        return query

    async def _page(
        self,
        db: Executor,
        table: str,
        document: str,
        query: Where,
        page: PageParams,
        scope: str,
        order: Order,
        item: Callable[[Any], Any] = lambda r: orjson.loads(r["doc"]),
        also: str | None = None,
    ) -> Page[Any]:
        """One page in ``order``: the row's own id, never ``row_id``, which a
        rebuild (``binome replay``) renumbers; so a cursor held across a
        rebuild neither skips nor repeats. ``also``: more columns for ``item``."""
        after = page.after(scope)
        if after is not None:
            query.add(after_condition(order, after, query.param))
        keys = order_by(order)
        rows = await db.fetch(
            f"SELECT {keys}, {document}::text AS doc{f', {also}' if also else ''} FROM {table} t WHERE {query.sql()}"
            f" ORDER BY {keys} LIMIT {query.param(page.limit + 1)}",
            *query.args,
        )
        return keyed_page(rows, page, scope, order, item)

    # -- the enrolment funnel -----------------------------------------------------------

    async def funnel(self, db: Executor, principal: Principal, wave_id: UUID) -> dict[str, Any]:
        wave = await self.wave(db, principal, wave_id)
        rows = await db.fetch(
            f"""SELECT role,
                       count(*) AS enrolled,
                       count(*) FILTER (WHERE status = 'withdrawn') AS withdrawn,
                       count(*) FILTER (WHERE status NOT IN ('withdrawn', 'erased')) AS active,
                       count(*) FILTER (WHERE status NOT IN ('withdrawn', 'erased') AND needs_answered) AS needs_answered,
                       count(*) FILTER (WHERE status NOT IN ('withdrawn', 'erased') AND qualified IS NOT NULL) AS assessed,
                       count(*) FILTER (WHERE status NOT IN ('withdrawn', 'erased') AND qualified) AS qualified,
                       count(*) FILTER (WHERE matchable) AS matchable,
                       coalesce(sum((doc->'profile'->>'capacity')::int) FILTER (WHERE matchable), 0) AS slots
                FROM {self.s}.participants WHERE wave_id = $1 GROUP BY role""",
            wave_id,
        )
        by_role = {r["role"]: r for r in rows}

        def counts(role: str, *names: str) -> dict[str, int]:
            row = by_role.get(role)
            return {name: row[name] if row else 0 for name in names}

        mentees = counts("mentee", "enrolled", "withdrawn", "active", "needs_answered", "matchable")
        mentors = counts("mentor", "enrolled", "withdrawn", "active", "assessed", "qualified", "matchable")
        mentors["mentee_slots"] = counts("mentor", "slots")["slots"]
        return {
            "wave_id": wave["wave_id"],
            "status": wave["status"],
            "target_pairs": wave["target_pairs"],
            "mentees": mentees,
            "mentors": mentors,
            "possible_pairs": min(mentees["matchable"], mentors["mentee_slots"]),
        }

    # -- what command handlers need -------------------------------------------------

    async def lock_wave(self, conn: asyncpg.Connection, wave_id: UUID) -> None:
        """Hold the wave's row until commit: an enrolment and the closing of
        the wave's enrolment cannot interleave."""
        await conn.execute(f"SELECT 1 FROM {self.s}.waves WHERE wave_id = $1 FOR SHARE", wave_id)

    async def hold_wave_for_enrolment(
        self, conn: asyncpg.Connection, wave_id: UUID, employee_ref: str
    ) -> tuple[UUID, tuple[UUID, str] | None] | None:
        """``lock_wave`` for an enrolment, in the same statement (one round trip
        instead of three) the wave's programme and the person's active
        enrolment in it, as ``active_enrolments`` finds it: (programme id,
        (participant id, country) or None); None when there is no such wave."""
        row = await conn.fetchrow(
            f"""SELECT w.programme_id, p.participant_id, p.country
                FROM {self.s}.waves w
                LEFT JOIN {self.s}.participants p
                       ON p.programme_id = w.programme_id AND p.employee_ref = $2
                      AND p.status NOT IN ('withdrawn', 'erased')
                WHERE w.wave_id = $1
                FOR SHARE OF w""",
            wave_id,
            employee_ref,
        )
        if row is None:
            return None
        enrolled = (row["participant_id"], row["country"]) if row["participant_id"] is not None else None
        return row["programme_id"], enrolled

    async def active_enrolments(
        self, db: Executor, programme_id: UUID, employee_refs: list[str]
    ) -> dict[str, tuple[UUID, str]]:
        """employee_ref -> (participant id, country) of the refs enrolled in the programme."""
        rows = await db.fetch(
            f"""SELECT employee_ref, participant_id, country FROM {self.s}.participants
                WHERE programme_id = $1 AND employee_ref = ANY($2::text[]) AND status NOT IN ('withdrawn', 'erased')""",
            programme_id,
            employee_refs,
        )
        return {r["employee_ref"]: (r["participant_id"], r["country"]) for r in rows}


#: Lists page by each row's own id (see ``_page``).
PROGRAMME_ORDER: Order = (("programme_id", UUID),)
WAVE_ORDER: Order = (("wave_id", UUID),)
PARTICIPANT_ORDER: Order = (("participant_id", UUID),)
