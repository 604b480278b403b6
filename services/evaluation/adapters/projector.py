"""Evaluation's own events -> its read tables (templates, settings,
assignments), inside the transaction that appends the events.

``apply`` is the only writer of these tables, both when an event is appended
and when ``rebuild`` replays the whole log, so they are a pure function of it.
An assignment row keeps its API document (``doc``) and the columns that lists
and results read: status, due date, scale answers, action counts.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.database import jsonb
from libs.domain.projector import InlineProjector
from libs.events.contexts.evaluation import (
    ActionsCommitted,
    AssignmentCancelled,
    AssignmentEvent,
    AssignmentReminded,
    EvaluationSettingsChanged,
    SurveyAnswered,
    SurveyAssigned,
    SurveyTemplatePublished,
)
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore

OWN_TABLES = ("assignments", "templates", "evaluation_settings")


class Projector(InlineProjector):
    context = "evaluation"

    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        self._sql_template = f"""
            INSERT INTO {s}.templates (template_id, organisation, programme_id, kind, version, updated_at, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
            ON CONFLICT (template_id) DO UPDATE SET version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at, doc = EXCLUDED.doc"""
        self._sql_settings = f"""
            INSERT INTO {s}.evaluation_settings (programme_id, organisation, k_anonymity, version, updated_at,
                                                 updated_by)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb)
            ON CONFLICT (programme_id) DO UPDATE SET k_anonymity = EXCLUDED.k_anonymity,
                version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by"""
        self._sql_assigned = f"""
            INSERT INTO {s}.assignments (assignment_id, organisation, programme_id, wave_id, country, pair_id,
                                         participant_id, kind, phase, status, due_at, version, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $12::jsonb)"""
        # $3: a JSON object merged into the document; the other columns only when given.
        self._sql_update = f"""
            UPDATE {s}.assignments SET
                version = $2, doc = doc || $3::jsonb,
                status = coalesce($4, status),
                scale = coalesce($5::jsonb, scale),
                actions_started = coalesce($6, actions_started),
                actions_planned = coalesce($7, actions_planned)
            WHERE assignment_id = $1"""

    async def on_SurveyTemplatePublished(
        self, conn: asyncpg.Connection, envelope: Envelope, event: SurveyTemplatePublished
    ) -> None:
        at = envelope.time
        doc = {**event.model_dump(mode="json", exclude={"actor"}), "published_at": at.isoformat(),
               "published_by": event.actor.model_dump(mode="json")}
        await conn.execute(
            self._sql_template, event.template_id, envelope.tenant, event.programme_id, event.kind.value,
            event.template_version, at, jsonb(doc),
        )

    async def on_EvaluationSettingsChanged(
        self, conn: asyncpg.Connection, envelope: Envelope, event: EvaluationSettingsChanged
    ) -> None:
        await conn.execute(
            self._sql_settings, event.programme_id, envelope.tenant, event.k_anonymity, envelope.sequence,
            envelope.time, jsonb(event.actor.model_dump(mode="json")),
        )

    async def on_SurveyAssigned(self, conn: asyncpg.Connection, envelope: Envelope, event: SurveyAssigned) -> None:
        at, version = envelope.time, envelope.sequence
        doc = {
            **event.model_dump(mode="json", exclude={"actor"}),
            "status": "open",
            "assigned_at": at.isoformat(),
            "assigned_by": event.actor.model_dump(mode="json"),
            "reminders": 0,
            "last_reminded_at": None,
            "answers": None,
            "free_text": None,
            "actions": None,
            "answered_at": None,
            "cancelled": None,
            "version": version,
        }
        await conn.execute(
            self._sql_assigned, event.assignment_id, envelope.tenant, event.programme_id, event.wave_id,
            event.country, event.pair_id, event.participant_id, event.kind.value, event.phase.value,
            event.due_at, version, jsonb(doc),
        )

    async def on_AssignmentReminded(
        self, conn: asyncpg.Connection, envelope: Envelope, event: AssignmentReminded
    ) -> None:
        changes = {"reminders": event.reminder, "last_reminded_at": event.reminded_at.isoformat()}
        await self._update_assignment(conn, envelope, event, changes)

    async def on_SurveyAnswered(self, conn: asyncpg.Connection, envelope: Envelope, event: SurveyAnswered) -> None:
        status = "answered"
        answers = [a.model_dump(mode="json") for a in event.answers]
        changes = {"status": status, "answers": answers, "free_text": event.free_text,
                   "answered_at": envelope.time.isoformat()}
        scale = jsonb({a.question_id: a.scale for a in event.answers if a.scale is not None})
        await self._update_assignment(conn, envelope, event, changes, status=status, scale=scale)

    async def on_ActionsCommitted(self, conn: asyncpg.Connection, envelope: Envelope, event: ActionsCommitted) -> None:
        changes = {
            "actions": [
                {"status": status.value, "description": description}
                for status, description in zip(event.statuses, event.descriptions, strict=True)
            ]
        }
        await self._update_assignment(conn, envelope, event, changes, started=event.started, planned=event.planned)

    async def on_AssignmentCancelled(
        self, conn: asyncpg.Connection, envelope: Envelope, event: AssignmentCancelled
    ) -> None:
        status = "cancelled"
        changes = {"status": status, "cancelled": {"reason": event.reason.value, "at": envelope.time.isoformat()}}
        await self._update_assignment(conn, envelope, event, changes, status=status)

    async def _update_assignment(
        self,
        conn: asyncpg.Connection,
        envelope: Envelope,
        event: AssignmentEvent,
        changes: dict[str, Any],
        *,
        status: str | None = None,
        scale: str | None = None,
        started: int | None = None,
        planned: int | None = None,
    ) -> None:
        """Merge ``changes`` into the assignment's document; set the columns given."""
        version = envelope.sequence
        changes["version"] = version
        await conn.execute(
            self._sql_update, event.assignment_id, version, jsonb(changes), status, scale, started, planned
        )

    async def rebuild(self, conn: asyncpg.Connection, store: EventStore, batch: int = 1000) -> int:
        """Empty the tables and apply the whole log again in the caller's
        transaction (writers wait meanwhile); return the events applied."""
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in OWN_TABLES)}")
        applied = 0
        async for envelope in store.iterate_log_exclusively(conn, batch):
            await self.apply(conn, [envelope])
            applied += 1
        return applied
