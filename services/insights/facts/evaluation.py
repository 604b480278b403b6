"""Evaluation events -> survey assignments (with the answer's score) and each
programme's anonymity threshold. Free-text answers and committed actions'
descriptions are personal data and never stored here."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.events.contexts import evaluation as ev
from libs.events.envelope import Envelope


def scale_score(answers: list[ev.AnswerItem]) -> float | None:
    """The mean of the scale answers (1..5); None when there is none."""
    scales = [a.scale for a in answers if a.kind is ev.QuestionKind.SCALE and a.scale is not None]
    return sum(scales) / len(scales) if scales else None


class EvaluationFacts:
    """Evaluation events -> assignments, evaluation settings. Templates,
    reminders and committed actions: nothing insights shows yet (no method)."""

    schema: str

    async def on_EvaluationSettingsChanged(self, conn: asyncpg.Connection, env: Envelope, e: ev.EvaluationSettingsChanged) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"""INSERT INTO {s}.evaluation_settings (programme_id, k_anonymity) VALUES ($1, $2)
                ON CONFLICT (programme_id) DO UPDATE SET k_anonymity = EXCLUDED.k_anonymity""",
            e.programme_id, e.k_anonymity,
        )
        return []

    async def on_SurveyAssigned(self, conn: asyncpg.Connection, env: Envelope, e: ev.SurveyAssigned) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"""INSERT INTO {s}.assignments (assignment_id, programme_id, pair_id, participant_id, kind, phase, due_at, status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'open') ON CONFLICT (assignment_id) DO NOTHING""",
            e.assignment_id, e.programme_id, e.pair_id, e.participant_id, e.kind.value, e.phase.value, e.due_at,
        )
        return [e.pair_id]

    async def on_SurveyAnswered(self, conn: asyncpg.Connection, env: Envelope, e: ev.SurveyAnswered) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"UPDATE {s}.assignments SET status = 'answered', answered_at = $2, score = $3 WHERE assignment_id = $1",
            e.assignment_id, env.time, scale_score(e.answers),
        )
        return [e.pair_id]

    async def on_AssignmentCancelled(self, conn: asyncpg.Connection, env: Envelope, e: ev.AssignmentCancelled) -> list[UUID]:
        s = self.schema
        await conn.execute(f"UPDATE {s}.assignments SET status = 'cancelled' WHERE assignment_id = $1", e.assignment_id)
        return [e.pair_id]
