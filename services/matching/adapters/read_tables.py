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
from libs.events.contexts.matching import (
    MatchingEvent,
    MatchingRunCompleted,
    PairAccepted,
    PairCompleted,
    PairDeclined,
    PairDissolved,
    PairEvent,
    PairExcluded,
    PairFormed,
    PairNotesExpired,
    PairProposed,
)
from libs.events.envelope import Envelope
from libs.events.registry import registry
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore
from services.matching.domain.pair import PairStatus

OWN_TABLES = ("pairs", "runs", "exclusions")

#: Free text people typed stays in the (crypto-shreddable) events only.
_NOT_IN_DOCS = {"actor", "note"}



def pair_doc(doc: dict[str, Any] | None, envelope: Envelope, event: PairEvent) -> dict[str, Any]:
    """The pair's API document after ``event``."""
    at, actor = envelope.time.isoformat(), event.actor.model_dump(mode="json")
    if isinstance(event, PairProposed):
        doc = {
            **event.model_dump(mode="json", exclude=_NOT_IN_DOCS),
            "status": PairStatus.PROPOSED.value,
            "accepted_by": [],
            "proposed_at": at,
            "proposed_by": actor,
            "formed_at": None,
            "ended": None,
        }
    else:
        assert doc is not None, f"{event.event_type()} before PairProposed"
        doc = dict(doc)
        if isinstance(event, PairAccepted):
            doc["accepted_by"] = [*doc["accepted_by"], event.side.value]
        elif isinstance(event, PairFormed):
            doc["status"] = PairStatus.FORMED.value
            doc["formed_at"] = at
            doc["confirmed_by"] = event.confirmed_by.value
        elif isinstance(event, PairDeclined):
            doc["status"] = PairStatus.DECLINED.value
            doc["ended"] = {"at": at, "by": actor, "side": event.side.value, "reason": None}
        elif isinstance(event, PairDissolved):
            doc["status"] = PairStatus.DISSOLVED.value
            doc["ended"] = {"at": at, "by": actor, "side": event.side.value, "reason": event.reason.value}
        elif isinstance(event, PairCompleted):
            doc["status"] = PairStatus.COMPLETED.value
            doc["ended"] = {"at": at, "by": actor, "side": None, "reason": None}
        elif isinstance(event, PairNotesExpired):
            # GDPR retention: the pair's key is shredded; its notes read as erased.
            doc["notes_expired"] = {"at": at, "retention_days": event.retention_days}
        else:
            raise TypeError(f"not a pair event: {event.event_type()}")
    doc["version"] = envelope.sequence
    doc["updated_at"] = at
    doc["updated_by"] = actor
    return doc


class ReadTables:
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
        self._sql_exclusion = f"""
            INSERT INTO {s}.exclusions (exclusion_id, organisation, programme_id, mentee_id, mentor_id, country, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)"""

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        pair_events: list[tuple[Envelope, PairEvent]] = []
        for envelope in envelopes:
            event = registry.load(envelope)
            assert isinstance(event, MatchingEvent), f"{envelope.type} is not a matching event"
            if isinstance(event, PairEvent):
                pair_events.append((envelope, event))
            elif isinstance(event, MatchingRunCompleted):
                await self._run(conn, envelope, event)
            elif isinstance(event, PairExcluded):
                await self._exclusion(conn, envelope, event)
            else:
                raise TypeError(f"no read table for {event.event_type()}")
        await self._pairs(conn, pair_events)

    async def _run(self, conn: asyncpg.Connection, envelope: Envelope, event: MatchingRunCompleted) -> None:
        doc = {
            **event.model_dump(mode="json", exclude={"actor"}),
            "completed_at": envelope.time.isoformat(),
            "completed_by": event.actor.model_dump(mode="json"),
        }
        run = (event.run_id, envelope.tenant, event.programme_id, event.wave_ids, event.countries, jsonb(doc))
        await conn.execute(self._sql_run, *run)

    async def _exclusion(self, conn: asyncpg.Connection, envelope: Envelope, event: PairExcluded) -> None:
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

    async def _pairs(self, conn: asyncpg.Connection, batch: list[tuple[Envelope, PairEvent]]) -> None:
        if not batch:
            return
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
