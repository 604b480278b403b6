"""This service's own events -> its read tables, inside the transaction that
appends them (so a read right after a command sees it, and the overlap rule
reads committed truth). ``apply`` is the only writer of these tables, both for
commands and for ``rebuild`` from the whole log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from libs.database import jsonb
from libs.domain.projector import InlineProjector
from libs.events.by_name import fold
from libs.events.contexts.sessions import (
    CheckInRecorded,
    MentorBudgetExceeded,
    MentorTimeLogged,
    SessionCancelled,
    SessionEvent,
    SessionHeld,
    SessionMoved,
    SessionNoShow,
    SessionScheduled,
    SessionSettingsChanged,
)
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore
from services.sessions.domain.values import SessionStatus

OWN_TABLES = ("sessions", "check_ins", "mentor_months", "session_settings")
PAIR_FACTS = {"pair_id", "programme_id", "wave_id", "country", "mentee_id", "mentor_id"}
Doc = dict[str, Any]


class SessionDoc:
    """How each session event changes the session document: ``on_<EventClassName>(doc,
    data, change, event)``, ``data`` the event's own fields, ``change`` when and by whom."""

    def on_SessionScheduled(self, doc: None, data: Doc, change: Doc, event: SessionScheduled) -> Doc:
        return {
            **event.model_dump(mode="json", include={"session_id", *PAIR_FACTS}),
            **data,
            "status": SessionStatus.SCHEDULED.value,
            "scheduled": change,
            "moves": [],
            "cancellation": None,
            "held": None,
            "no_show": None,
        }

    def on_SessionMoved(self, doc: Doc, data: Doc, change: Doc, event: SessionMoved) -> Doc:
        doc["starts_at"], doc["duration_minutes"] = data["starts_at"], data["duration_minutes"]
        doc["moves"] = [*doc["moves"], {**data, **change}]
        return doc

    def on_SessionCancelled(self, doc: Doc, data: Doc, change: Doc, event: SessionCancelled) -> Doc:
        doc["status"], doc["cancellation"] = SessionStatus.CANCELLED.value, {**data, **change}
        return doc

    def on_SessionHeld(self, doc: Doc, data: Doc, change: Doc, event: SessionHeld) -> Doc:
        doc["status"], doc["held"] = SessionStatus.HELD.value, {**data, **change}
        return doc

    def on_SessionNoShow(self, doc: Doc, data: Doc, change: Doc, event: SessionNoShow) -> Doc:
        doc["status"], doc["no_show"] = SessionStatus.NO_SHOW.value, {**data, **change}
        return doc


SESSION_DOC = SessionDoc()


def session_doc(doc: Doc | None, envelope: Envelope, event: SessionEvent) -> Doc:
    """The session document after ``event`` (a pure function of the log)."""
    assert doc is not None or isinstance(event, SessionScheduled), f"{event.event_type()} before SessionScheduled"
    change = {"at": envelope.time.isoformat(), "by": event.actor.model_dump(mode="json")}
    data = event.model_dump(mode="json", exclude={"actor", "session_id", *PAIR_FACTS})
    doc = fold(SESSION_DOC, None if doc is None else dict(doc), data, change, event=event)
    doc["version"] = envelope.sequence
    doc["updated_at"], doc["updated_by"] = change["at"], change["by"]
    return doc


class Projector(InlineProjector):
    context = "sessions"

    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        self._sql_session_doc = f"SELECT doc::text FROM {s}.sessions WHERE session_id = $1"
        self._sql_session = f"""
            INSERT INTO {s}.sessions (session_id, organisation, pair_id, programme_id, wave_id, country,
                                      mentee_id, mentor_id, status, starts_at, ends_at, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                    $10::timestamptz, $10::timestamptz + make_interval(mins => $11::int), $12::jsonb)
            ON CONFLICT (session_id) DO UPDATE SET status = EXCLUDED.status, starts_at = EXCLUDED.starts_at,
                                                   ends_at = EXCLUDED.ends_at, doc = EXCLUDED.doc"""
        self._sql_check_in = f"""
            INSERT INTO {s}.check_ins (check_in_id, organisation, pair_id, programme_id, country,
                                       mentee_id, mentor_id, member, mood, recorded_at, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)"""
        self._sql_time_logged = f"""
            INSERT INTO {s}.mentor_months (mentor_id, month, organisation, programme_id, country, budget_minutes,
                                           total_minutes, session_minutes, preparation_minutes, entries,
                                           over_budget, version, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, false, $10, $11)
            ON CONFLICT (mentor_id, month) DO UPDATE SET
                budget_minutes = EXCLUDED.budget_minutes, total_minutes = EXCLUDED.total_minutes,
                session_minutes = {s}.mentor_months.session_minutes + EXCLUDED.session_minutes,
                preparation_minutes = {s}.mentor_months.preparation_minutes + EXCLUDED.preparation_minutes,
                entries = {s}.mentor_months.entries + 1,
                over_budget = EXCLUDED.total_minutes > EXCLUDED.budget_minutes OR {s}.mentor_months.over_budget,
                version = EXCLUDED.version, updated_at = EXCLUDED.updated_at"""
        self._sql_exceeded = f"""
            UPDATE {s}.mentor_months SET over_budget = true, exceeded_at = $3, version = $4, updated_at = $3
            WHERE mentor_id = $1 AND month = $2"""
        self._sql_settings = f"""
            INSERT INTO {s}.session_settings (programme_id, organisation, budget_share_percent, weekly_hours,
                                              monthly_budget_minutes, late_cancellation_hours, version,
                                              updated_at, updated_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
            ON CONFLICT (programme_id) DO UPDATE SET
                budget_share_percent = EXCLUDED.budget_share_percent, weekly_hours = EXCLUDED.weekly_hours,
                monthly_budget_minutes = EXCLUDED.monthly_budget_minutes,
                late_cancellation_hours = EXCLUDED.late_cancellation_hours, version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by"""

    async def on_SessionScheduled(self, conn: asyncpg.Connection, envelope: Envelope, event: SessionScheduled) -> None:
        await self._session(conn, envelope, event)

    async def on_SessionMoved(self, conn: asyncpg.Connection, envelope: Envelope, event: SessionMoved) -> None:
        await self._session(conn, envelope, event)

    async def on_SessionCancelled(self, conn: asyncpg.Connection, envelope: Envelope, event: SessionCancelled) -> None:
        await self._session(conn, envelope, event)

    async def on_SessionHeld(self, conn: asyncpg.Connection, envelope: Envelope, event: SessionHeld) -> None:
        await self._session(conn, envelope, event)

    async def on_SessionNoShow(self, conn: asyncpg.Connection, envelope: Envelope, event: SessionNoShow) -> None:
        await self._session(conn, envelope, event)

    async def on_CheckInRecorded(self, conn: asyncpg.Connection, envelope: Envelope, event: CheckInRecorded) -> None:
        doc = {
            **event.model_dump(mode="json", exclude={"actor"}),
            "recorded_at": envelope.time.isoformat(),
            "recorded_by": event.actor.model_dump(mode="json"),
        }
        await conn.execute(
            self._sql_check_in, event.check_in_id, envelope.tenant, event.pair_id, event.programme_id,
            event.country, event.mentee_id, event.mentor_id, event.member.value, event.mood, envelope.time, jsonb(doc),
        )  # fmt: skip

    async def on_MentorTimeLogged(self, conn: asyncpg.Connection, envelope: Envelope, event: MentorTimeLogged) -> None:
        await conn.execute(
            self._sql_time_logged, event.mentor_id, event.month, envelope.tenant, event.programme_id,
            event.country, event.budget_minutes, event.total_minutes, event.session_minutes or 0,
            event.preparation_minutes or 0, envelope.sequence, envelope.time,
        )  # fmt: skip

    async def on_MentorBudgetExceeded(
        self, conn: asyncpg.Connection, envelope: Envelope, event: MentorBudgetExceeded
    ) -> None:
        await conn.execute(self._sql_exceeded, event.mentor_id, event.month, envelope.time, envelope.sequence)

    async def on_SessionSettingsChanged(
        self, conn: asyncpg.Connection, envelope: Envelope, event: SessionSettingsChanged
    ) -> None:
        await conn.execute(
            self._sql_settings, event.programme_id, envelope.tenant, event.budget_share_percent,
            event.weekly_hours, event.monthly_budget_minutes, event.late_cancellation_hours,
            envelope.sequence, envelope.time, jsonb(event.actor.model_dump(mode="json")),
        )  # fmt: skip

    async def _session(self, conn: asyncpg.Connection, envelope: Envelope, event: SessionEvent) -> None:
        previous = await conn.fetchval(self._sql_session_doc, event.session_id)
        doc = session_doc(None if previous is None else orjson.loads(previous), envelope, event)
        await conn.execute(
            self._sql_session, event.session_id, envelope.tenant, event.pair_id, event.programme_id, event.wave_id,
            event.country, event.mentee_id, event.mentor_id, doc["status"],
            datetime.fromisoformat(doc["starts_at"]), doc["duration_minutes"], jsonb(doc),
        )  # fmt: skip

    async def rebuild(self, conn: asyncpg.Connection, store: EventStore) -> int:
        """Empty the own tables and apply the whole log again, inside the
        caller's transaction (writers wait meanwhile); return the events applied."""
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in OWN_TABLES)}")
        applied = 0
        async for envelope in store.iterate_log_exclusively(conn):
            await self.apply(conn, [envelope])
            applied += 1
        return applied
