"""The read side: templates, settings, assignments and results as the caller
may see them, and the lookups commands and the intake need.

Visibility: an HR admin (and a Binome service) sees the whole organisation;
a regional committee the assignments, pairs and results of its countries; a
participant its own assignments (token subject = participant id). Anything
else, and anything of another organisation, is "not found" (404). Free-text
answers are shown to the participant who wrote them only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.api.pagination import Order, Page, PageParams, after_condition, cursor_scope, keyed_page, order_by
from libs.auth.principal import HR_ADMIN, PARTICIPANT, REGIONAL_COMMITTEE, SERVICE, Principal, normalise_country
from libs.database import Where
from libs.events.contexts.evaluation import Phase, SurveyKind
from libs.eventstore.migrations import check_schema_name
from services.evaluation.domain.errors import NotFound
from services.evaluation.domain.results import K_DEFAULT, Response, pair_delta, summarise

Db = asyncpg.Connection | asyncpg.Pool
STAFF = (HR_ADMIN, REGIONAL_COMMITTEE, SERVICE)
GROUPS = {"programme": "'all'", "wave": "a.wave_id::text", "country": "a.country", "region": "coalesce(w.region, '')"}


def is_participant_self(principal: Principal, participant_id: UUID | str, organisation: str) -> bool:
    return principal.has_role(PARTICIPANT) and principal.subject == str(participant_id) and (
        principal.organisation == organisation
    )


@dataclass(frozen=True)
class AssignmentFilters:
    programme_id: UUID | None = None
    wave_id: UUID | None = None
    pair_id: UUID | None = None
    participant_id: UUID | None = None
    country: str | None = None
    kind: str | None = None
    status: str | None = None
    overdue: bool | None = None


def _country_scope(where: Where, principal: Principal, country: str | None, column: str = "country") -> None:
    """The caller's countries; naming one it may not see is a 404."""
    if country is not None:
        country = normalise_country(country)
        if not principal.can_see_country(country):
            raise NotFound("country", country)
        where.add(f"{column} = {where.param(country)}")
    if not principal.sees_all_countries():
        where.add(f"{column} = ANY({where.param(sorted(principal.countries))}::text[])")


class Views:
    def __init__(self, schema: str) -> None:
        self.s = check_schema_name(schema)

    # -- templates and settings (programme configuration) ---------------------------

    async def programme_languages(self, db: Db, principal: Principal, programme_id: UUID) -> list[str]:
        languages = await db.fetchval(
            f"SELECT languages FROM {self.s}.ref_programmes WHERE programme_id = $1 AND organisation = $2",
            programme_id,
            principal.organisation,
        )
        if languages is None:
            raise NotFound("programme", programme_id)
        return list(languages)

    async def templates(self, db: Db, principal: Principal, programme_id: UUID) -> list[dict[str, Any]]:
        await self.programme_languages(db, principal, programme_id)
        rows = await db.fetch(
            f"SELECT doc::text FROM {self.s}.templates WHERE programme_id = $1 AND organisation = $2 ORDER BY kind",
            programme_id,
            principal.organisation,
        )
        return [orjson.loads(r[0]) for r in rows]

    async def template(self, db: Db, principal: Principal, template_id: UUID) -> dict[str, Any]:
        doc = await db.fetchval(
            f"SELECT doc::text FROM {self.s}.templates WHERE template_id = $1 AND organisation = $2",
            template_id,
            principal.organisation,
        )
        if doc is None:
            raise NotFound("template", template_id)
        return orjson.loads(doc)

    async def k_anonymity(self, db: Db, programme_id: UUID) -> int:
        k = await db.fetchval(
            f"SELECT k_anonymity FROM {self.s}.evaluation_settings WHERE programme_id = $1", programme_id
        )
        return K_DEFAULT if k is None else k

    async def settings(self, db: Db, principal: Principal, programme_id: UUID) -> dict[str, Any]:
        await self.programme_languages(db, principal, programme_id)
        row = await db.fetchrow(
            f"SELECT k_anonymity, version FROM {self.s}.evaluation_settings WHERE programme_id = $1", programme_id
        )
        return {
            "programme_id": str(programme_id),
            "k_anonymity": row["k_anonymity"] if row else K_DEFAULT,
            "version": row["version"] if row else 0,
        }

    # -- assignments ------------------------------------------------------------------

    def _visible_doc(self, principal: Principal, row: asyncpg.Record, now: datetime) -> dict[str, Any]:
        doc = orjson.loads(row["doc"])
        if not is_participant_self(principal, row["participant_id"], row["organisation"]):
            doc["free_text"] = None  # personal: its author's only
            doc["actions"] = [{"status": a["status"]} for a in doc["actions"]] if doc["actions"] else doc["actions"]
        doc["overdue"] = doc["status"] == "open" and now > datetime.fromisoformat(doc["due_at"])
        return doc

    async def assignment(self, db: Db, principal: Principal, assignment_id: UUID, now: datetime) -> dict[str, Any]:
        row = await db.fetchrow(
            f"SELECT organisation, country, participant_id, doc::text AS doc FROM {self.s}.assignments"
            " WHERE assignment_id = $1",
            assignment_id,
        )
        if row is None or not (
            principal.can_see(row["organisation"], row["country"])
            or is_participant_self(principal, row["participant_id"], row["organisation"])
        ):
            raise NotFound("assignment", assignment_id)
        return self._visible_doc(principal, row, now)

    async def assignments(
        self, db: Db, principal: Principal, filters: AssignmentFilters, page: PageParams, now: datetime
    ) -> Page[Any]:
        scope = cursor_scope(listing="assignments", **vars(filters))
        where = Where()
        where.add(f"organisation = {where.param(principal.organisation)}")
        if principal.has_role(*STAFF):
            _country_scope(where, principal, filters.country)
            await self._filters_visible(db, principal, filters.wave_id, filters.pair_id, filters.participant_id)
        else:  # a participant lists its own assignments only
            me = _as_uuid(principal.subject)
            where.add(f"participant_id = {where.param(me)}")
            await self._own_filters(db, principal, me, filters.pair_id, filters.participant_id)
            if filters.country is not None:
                where.add(f"country = {where.param(normalise_country(filters.country))}")
        for column in ("programme_id", "wave_id", "pair_id", "participant_id", "kind", "status"):
            value = getattr(filters, column)
            if value is not None:
                where.add(f"{column} = {where.param(value)}")
        if filters.overdue is not None:
            test = "status = 'open' AND due_at < {}" if filters.overdue else "NOT (status = 'open' AND due_at < {})"
            where.add(test.format(where.param(now)))
        after = page.after(scope)
        if after is not None:
            where.add(after_condition(ASSIGNMENT_ORDER, after, where.param))
        keys = order_by(ASSIGNMENT_ORDER)
        limit = where.param(page.limit + 1)
        rows = await db.fetch(
            f"SELECT {keys}, organisation, participant_id, doc::text AS doc FROM {self.s}.assignments"
            f" WHERE {where} ORDER BY {keys} LIMIT {limit}",
            *where.args,
        )
        return keyed_page(rows, page, scope, ASSIGNMENT_ORDER, lambda r: self._visible_doc(principal, r, now))

    async def overdue(self, db: Db, principal: Principal, now: datetime) -> list[UUID]:
        where = Where()
        where.add(f"organisation = {where.param(principal.organisation)}")
        where.add(f"status = 'open' AND due_at < {where.param(now)}")
        _country_scope(where, principal, None)
        rows = await db.fetch(f"SELECT assignment_id FROM {self.s}.assignments WHERE {where} ORDER BY row_id",
                              *where.args)
        return [r[0] for r in rows]

    # -- results ------------------------------------------------------------------------

    async def pair_maturity(self, db: Db, principal: Principal, pair_id: UUID) -> dict[str, Any]:
        rows = await db.fetch(
            f"""SELECT organisation, country, phase, status, scale::text AS scale FROM {self.s}.assignments
                WHERE pair_id = $1 AND kind = $2""",
            pair_id,
            SurveyKind.DIGITAL_MATURITY.value,
        )
        if not rows or not principal.can_see(rows[0]["organisation"], rows[0]["country"]):
            raise NotFound("pair", pair_id)
        answered = {r["phase"]: orjson.loads(r["scale"]) for r in rows if r["status"] == "answered"}
        delta = pair_delta(answered.get(Phase.PRE.value, {}), answered.get(Phase.POST.value, {}))
        return {
            "pair_id": str(pair_id),
            "pre_answered": Phase.PRE.value in answered,
            "post_answered": Phase.POST.value in answered,
            "pre": round(delta.pre, 2) if delta else None,
            "post": round(delta.post, 2) if delta else None,
            "delta": round(delta.change, 2) if delta else None,
            "delta_percent": round(delta.percent, 1) if delta else None,
        }

    async def results(
        self,
        db: Db,
        principal: Principal,
        programme_id: UUID,
        group_by: str,
        wave_id: UUID | None = None,
        country: str | None = None,
    ) -> dict[str, Any]:
        await self.programme_languages(db, principal, programme_id)
        k = await self.k_anonymity(db, programme_id)
        where = Where()
        where.add(f"a.programme_id = {where.param(programme_id)}")
        where.add(f"a.organisation = {where.param(principal.organisation)}")
        _country_scope(where, principal, country, "a.country")
        await self._filters_visible(db, principal, wave_id)
        if wave_id is not None:
            where.add(f"a.wave_id = {where.param(wave_id)}")
        rows = await db.fetch(
            f"""SELECT {GROUPS[group_by]} AS grp, a.participant_id, a.pair_id, a.kind, a.phase, a.status,
                       a.scale::text AS scale, a.actions_started, a.actions_planned
                FROM {self.s}.assignments a LEFT JOIN {self.s}.ref_waves w USING (wave_id)
                WHERE {where}""",
            *where.args,
        )
        groups: dict[str, list[Response]] = {}
        for r in rows:
            groups.setdefault(r["grp"], []).append(
                Response(
                    r["participant_id"], r["pair_id"], SurveyKind(r["kind"]), Phase(r["phase"]), r["status"],
                    orjson.loads(r["scale"]), r["actions_started"], r["actions_planned"],
                )
            )
        return {
            "programme_id": str(programme_id),
            "group_by": group_by,
            "k_anonymity": k,
            "groups": [{"group": key, **summarise(groups[key], k)} for key in sorted(groups)],
        }

    async def _filters_visible(
        self,
        db: Db,
        principal: Principal,
        wave_id: UUID | None = None,
        pair_id: UUID | None = None,
        participant_id: UUID | None = None,
    ) -> None:
        """A filter naming another country's (or organisation's) wave, pair or
        participant is a 404, like the object itself."""
        lookups = (
            ("wave", wave_id, f"SELECT organisation, country FROM {self.s}.ref_waves WHERE wave_id = $1"),
            ("pair", pair_id, f"SELECT organisation, country FROM {self.s}.ref_pairs WHERE pair_id = $1"),
            (
                "participant",
                participant_id,
                f"SELECT organisation, country FROM {self.s}.assignments WHERE participant_id = $1 LIMIT 1",
            ),
        )
        for kind, identifier, sql in lookups:
            if identifier is None:
                continue
            row = await db.fetchrow(sql, identifier)
            if row is not None and not principal.can_see(row["organisation"], row["country"]):
                raise NotFound(kind, identifier)

    async def _own_filters(
        self, db: Db, principal: Principal, me: UUID | None, pair_id: UUID | None, participant_id: UUID | None
    ) -> None:
        """A participant's filter naming another person, or a pair it is not in, is a 404."""
        if participant_id is not None and participant_id != me:
            raise NotFound("participant", participant_id)
        if pair_id is not None:
            row = await db.fetchrow(
                f"SELECT organisation, mentee_id, mentor_id FROM {self.s}.ref_pairs WHERE pair_id = $1", pair_id
            )
            if row is None or row["organisation"] != principal.organisation or me not in (row[1], row[2]):
                raise NotFound("pair", pair_id)

    # -- what commands and the intake need ------------------------------------------

    async def has_templates(self, db: Db, programme_id: UUID) -> bool:
        return bool(await db.fetchval(f"SELECT true FROM {self.s}.templates WHERE programme_id = $1 LIMIT 1",
                                      programme_id))

    async def current_template(self, db: Db, programme_id: UUID, kind: SurveyKind) -> tuple[UUID, int]:
        row = await db.fetchrow(
            f"SELECT template_id, version FROM {self.s}.templates WHERE programme_id = $1 AND kind = $2",
            programme_id,
            kind.value,
        )
        return row["template_id"], row["version"]

    async def pre_version(self, db: Db, pair_id: UUID) -> int | None:
        return await db.fetchval(
            f"""SELECT (doc->>'template_version')::int FROM {self.s}.assignments
                WHERE pair_id = $1 AND kind = $2 AND phase = $3 LIMIT 1""",
            pair_id,
            SurveyKind.DIGITAL_MATURITY.value,
            Phase.PRE.value,
        )

    async def open_assignments(self, db: Db, pair_id: UUID) -> list[UUID]:
        rows = await db.fetch(
            f"SELECT assignment_id FROM {self.s}.assignments WHERE pair_id = $1 AND status = 'open' ORDER BY row_id",
            pair_id,
        )
        return [r[0] for r in rows]


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


#: Assignments page by their own id, never ``row_id``, which a rebuild
#: (``binome replay``) renumbers: a cursor held across a rebuild neither skips nor repeats.
ASSIGNMENT_ORDER: Order = (("assignment_id", UUID),)
