"""Matching's own events -> its read tables (pairs, runs, exclusions), in the
transaction that appends the events.

``apply`` is the only code that writes these tables, both when a command
appends events and when ``rebuild`` replays the whole log, so the tables are
a pure function of the log. A pair row carries its API document (``doc``)
plus the columns lists filter on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from libs.database import jsonb
from libs.domain.projector import InlineProjector
from libs.events.by_name import fold
from libs.events.contexts.matching import (
    MatchingRunCompleted,
    PairAccepted,
    PairCompleted,
    PairDeclined,
    PairDissolved,
    PairEvent,
    ExclusionLifted,
    MentorInterestExpressed,
    PairExcluded,
    PairFormed,
    PairNotesExpired,
    PairProposed,
    UnmatchedCode,
)
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore
from services.matching.domain.pair import PairStatus

OWN_TABLES = ("pairs", "runs", "exclusions", "waitlist", "interests")
#: Why a run puts a mentee on its wave's waitlist (the others were not short of mentors).
WAITLISTED = (UnmatchedCode.CAPACITY_EXHAUSTED, UnmatchedCode.NO_FEASIBLE_PARTNER)

#: Free text people typed stays in the (crypto-shreddable) events only.
_NOT_IN_DOCS = {"actor", "note"}
Doc = dict[str, Any]


class PairDoc:
    """How each pair event changes the pair's API document:
    ``on_<EventClassName>(doc, at, actor, event)``."""

    def on_PairProposed(self, doc: None, at: str, actor: Doc, event: PairProposed) -> Doc:
        return {
            **event.model_dump(mode="json", exclude=_NOT_IN_DOCS),
            "status": PairStatus.PROPOSED.value,
            "accepted_by": [],
            "proposed_at": at,
            "proposed_by": actor,
            "formed_at": None,
            "ended": None,
        }

    def on_PairAccepted(self, doc: Doc, at: str, actor: Doc, event: PairAccepted) -> Doc:
        doc["accepted_by"] = [*doc["accepted_by"], event.side.value]
        return doc

    def on_PairFormed(self, doc: Doc, at: str, actor: Doc, event: PairFormed) -> Doc:
        doc["status"] = PairStatus.FORMED.value
        doc["formed_at"] = at
        doc["confirmed_by"] = event.confirmed_by.value
        return doc

    def on_PairDeclined(self, doc: Doc, at: str, actor: Doc, event: PairDeclined) -> Doc:
        doc["status"] = PairStatus.DECLINED.value
        doc["ended"] = {"at": at, "by": actor, "side": event.side.value, "reason": None}
        return doc

    def on_PairDissolved(self, doc: Doc, at: str, actor: Doc, event: PairDissolved) -> Doc:
        doc["status"] = PairStatus.DISSOLVED.value
        doc["ended"] = {"at": at, "by": actor, "side": event.side.value, "reason": event.reason.value}
        return doc

    def on_PairCompleted(self, doc: Doc, at: str, actor: Doc, event: PairCompleted) -> Doc:
        doc["status"] = PairStatus.COMPLETED.value
        doc["ended"] = {"at": at, "by": actor, "side": None, "reason": None}
        return doc

    def on_PairNotesExpired(self, doc: Doc, at: str, actor: Doc, event: PairNotesExpired) -> Doc:
        # GDPR retention: the pair's key is shredded; its notes read as erased.
        doc["notes_expired"] = {"at": at, "retention_days": event.retention_days}
        return doc


PAIR_DOC = PairDoc()


def pair_doc(doc: Doc | None, envelope: Envelope, event: PairEvent) -> Doc:
    """The pair's API document after ``event``."""
    assert doc is not None or isinstance(event, PairProposed), f"{event.event_type()} before PairProposed"
    at, actor = envelope.time.isoformat(), event.actor.model_dump(mode="json")
    doc = fold(PAIR_DOC, None if doc is None else dict(doc), at, actor, event=event)
    doc["version"] = envelope.sequence
    doc["updated_at"] = at
    doc["updated_by"] = actor
    return doc


class ReadTables(InlineProjector):
    context = "matching"
    folder = PairDoc

    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        self._sql_pair_docs = f"SELECT pair_id, doc::text FROM {s}.pairs WHERE pair_id = ANY($1::uuid[])"
        # One statement for a whole run's proposals.
        self._sql_pair_upsert = f"""
            INSERT INTO {s}.pairs (pair_id, organisation, programme_id, wave_id, country, mentee_id, mentor_id,
                                   status, version, doc)
            SELECT pair_id, organisation, programme_id, wave_id, country, mentee_id, mentor_id, status, version, doc
            FROM jsonb_to_recordset($1::jsonb) AS r(
                pair_id uuid, organisation text, programme_id uuid, wave_id uuid, country text, mentee_id uuid,
                mentor_id uuid, status text, version integer, doc jsonb)
            ON CONFLICT (pair_id) DO UPDATE SET
                status = EXCLUDED.status, version = EXCLUDED.version, doc = EXCLUDED.doc"""
        self._sql_run = f"""
            INSERT INTO {s}.runs (run_id, organisation, programme_id, wave_ids, countries, doc)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb)"""
        # A run's unmatched mentees wait in their wave (the pool knows it), in
        # the order they first waited; a proposal takes a mentee off.
        self._sql_waitlisted = f"""
            INSERT INTO {s}.waitlist (mentee_id, organisation, programme_id, wave_id, reason, run_id, since)
            SELECT c.participant_id, c.organisation, c.programme_id, c.wave_id, r.reason, $3, $4
            FROM jsonb_to_recordset($1::jsonb) AS r(mentee_id uuid, reason text)
            JOIN {s}.candidates c ON c.participant_id = r.mentee_id AND c.organisation = $2
            ON CONFLICT (mentee_id) DO UPDATE SET
                reason = EXCLUDED.reason, run_id = EXCLUDED.run_id, wave_id = EXCLUDED.wave_id"""
        self._sql_off_waitlist = f"DELETE FROM {s}.waitlist WHERE mentee_id = ANY($1::uuid[])"
        # An exclusion lifted stays, marked; excluding the pair again puts it in force anew.
        self._sql_exclusion = f"""
            INSERT INTO {s}.exclusions (exclusion_id, organisation, programme_id, mentee_id, mentor_id, country, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
            ON CONFLICT (exclusion_id) DO UPDATE SET doc = EXCLUDED.doc, lifted = false"""
        self._sql_exclusion_lifted = f"""
            UPDATE {s}.exclusions SET lifted = true, doc = doc || $2::jsonb WHERE exclusion_id = $1"""
        self._sql_interest = f"""
            INSERT INTO {s}.interests (interest_id, organisation, programme_id, mentee_id, mentor_id, country, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)"""

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """The events in log order; a run of pair events is written in one
        statement (their documents folded by ``PairDoc``)."""
        pair_events: list[tuple[Envelope, PairEvent]] = []
        for envelope, event in self.events(envelopes):
            if isinstance(event, PairEvent):
                pair_events.append((envelope, event))
                continue
            # The pairs before the next event first: the waitlist follows the log's order.
            await self._pairs(conn, pair_events)
            pair_events = []
            await self.handler_for(event)(conn, envelope, event)
        await self._pairs(conn, pair_events)

    async def on_MatchingRunCompleted(
        self, conn: asyncpg.Connection, envelope: Envelope, event: MatchingRunCompleted
    ) -> None:
        doc = {
            **event.model_dump(mode="json", exclude={"actor"}),
            "completed_at": envelope.time.isoformat(),
            "completed_by": event.actor.model_dump(mode="json"),
        }
        run = (event.run_id, envelope.tenant, event.programme_id, event.wave_ids, event.countries, jsonb(doc))
        await conn.execute(self._sql_run, *run)
        waiting = [
            {"mentee_id": str(u.participant_id), "reason": u.code.value}
            for u in event.unmatched
            if u.role == "mentee" and u.code in WAITLISTED
        ]
        if waiting:
            await conn.execute(self._sql_waitlisted, jsonb(waiting), envelope.tenant, event.run_id, envelope.time)

    async def on_ExclusionLifted(self, conn: asyncpg.Connection, envelope: Envelope, event: ExclusionLifted) -> None:
        lifted = {"lifted_at": envelope.time.isoformat(), "lifted_by": event.actor.model_dump(mode="json")}
        await conn.execute(self._sql_exclusion_lifted, event.exclusion_id, jsonb(lifted))

    async def on_PairExcluded(self, conn: asyncpg.Connection, envelope: Envelope, event: PairExcluded) -> None:
        doc = {
            **event.model_dump(mode="json", exclude=_NOT_IN_DOCS),
            "excluded_at": envelope.time.isoformat(),
            "excluded_by": event.actor.model_dump(mode="json"),
        }
        await conn.execute(
            self._sql_exclusion,
            event.exclusion_id,
            envelope.tenant,
            event.programme_id,
            event.mentee_id,
            event.mentor_id,
            event.country,
            jsonb(doc),
        )

    async def on_MentorInterestExpressed(
        self, conn: asyncpg.Connection, envelope: Envelope, event: MentorInterestExpressed
    ) -> None:
        doc = {**event.model_dump(mode="json", exclude={"actor"}), "expressed_at": envelope.time.isoformat()}
        await conn.execute(
            self._sql_interest,
            event.interest_id,
            envelope.tenant,
            event.programme_id,
            event.mentee_id,
            event.mentor_id,
            event.country,
            jsonb(doc),
        )

    async def _pairs(self, conn: asyncpg.Connection, batch: list[tuple[Envelope, PairEvent]]) -> None:
        if not batch:
            return
        proposed = [e.people.mentee_id for _, e in batch if isinstance(e, PairProposed)]
        if proposed:
            await conn.execute(self._sql_off_waitlist, proposed)
        known = [e.pair_id for _, e in batch if not isinstance(e, PairProposed)]
        docs: dict[Any, dict[str, Any]] = {}
        if known:
            docs = {row[0]: orjson.loads(row[1]) for row in await conn.fetch(self._sql_pair_docs, known)}
        tenants: dict[Any, str] = {}
        for envelope, event in batch:
            docs[event.pair_id] = pair_doc(docs.get(event.pair_id), envelope, event)
            tenants[event.pair_id] = envelope.tenant
        rows = [
            {
                "pair_id": str(pair_id),
                "organisation": tenants[pair_id],
                "programme_id": doc["programme_id"],
                "wave_id": doc["wave_id"],
                "country": doc["country"],
                "mentee_id": doc["people"]["mentee_id"],
                "mentor_id": doc["people"]["mentor_id"],
                "status": doc["status"],
                "version": doc["version"],
                "doc": doc,
            }
            for pair_id, doc in docs.items()
            if pair_id in tenants
        ]
        await conn.execute(self._sql_pair_upsert, jsonb(rows))

    async def rebuild(self, conn: asyncpg.Connection, store: EventStore) -> int:
        """Empty the tables and apply the whole log again in the caller's
        transaction (writers wait meanwhile); return the events applied."""
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in OWN_TABLES)}")
        log = [envelope async for envelope in store.iterate_log_exclusively(conn)]
        await self.apply(conn, log)  # a pair's events may span the whole log: one pass
        return len(log)
