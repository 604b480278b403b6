"""Evaluation's part of a participant's GDPR export (libs/gdpr/export.py):
its assignments with their answers, its own free text and its committed
actions. From this service's own tables only; another organisation's
participant is unknown."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.auth.principal import Principal
from libs.events.contexts.evaluation import (
    ActionStatus,
    CancellationReason,
    Phase,
    QuestionKind,
    Respondent,
    SurveyKind,
)
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.export import ActorExport, ExportPart


class AnswerExport(ExportPart):
    question_id: str
    kind: QuestionKind
    scale: int | None
    options: list[str]


class ActionExport(ExportPart):
    status: ActionStatus
    description: str | None


class CancelledExport(ExportPart):
    reason: CancellationReason
    at: datetime


class AssignmentExport(ExportPart):
    """An assignment's document as the read model keeps it (adapters/projector.py)."""

    assignment_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    pair_id: UUID
    participant_id: UUID
    template_id: UUID
    template_version: int
    kind: SurveyKind
    phase: Phase
    respondent: Respondent
    session_id: UUID | None
    due_at: datetime
    status: str
    assigned_at: datetime
    assigned_by: ActorExport
    reminders: int
    last_reminded_at: datetime | None
    answers: list[AnswerExport] | None
    free_text: dict[str, str] | None
    actions: list[ActionExport] | None
    answered_at: datetime | None
    cancelled: CancelledExport | None
    version: int


class CommittedActionExport(ActionExport):
    assignment_id: UUID


class EvaluationExport(ExportPart):
    """Every field ``Export.collect`` returns (an undeclared one is an error)."""

    assignments: list[AssignmentExport]
    committed_actions: list[CommittedActionExport]


class Export:
    def __init__(self, schema: str) -> None:
        s = check_schema_name(schema)
        self._sql_assignments = f"""
            SELECT doc::text FROM {s}.assignments WHERE organisation = $1 AND participant_id = $2 ORDER BY row_id"""

    async def collect(self, db: asyncpg.Pool, who: Principal, participant_id: UUID) -> dict[str, Any] | None:
        docs = [orjson.loads(r[0]) for r in await db.fetch(self._sql_assignments, who.organisation, participant_id)]
        if not docs:
            return None
        actions = [
            {"assignment_id": d["assignment_id"], **action} for d in docs for action in (d.get("actions") or [])
        ]
        return {"assignments": docs, "committed_actions": actions}
