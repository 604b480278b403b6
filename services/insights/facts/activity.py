"""``pair_activity``: one pair's counters and dates, recomputed from the fact
tables whenever one of its facts changes.

A recomputation, not an increment: the row is a function of the facts, so
the order in which streams interleave (live or in a rebuild) cannot change
it, and a fact applied once more could not count twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg

_REFRESH = """
WITH ses AS (
    SELECT count(*) FILTER (WHERE status = 'held') AS held,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE status = 'cancelled' AND late) AS late,
           count(*) FILTER (WHERE status = 'no_show') AS no_shows,
           coalesce(sum(actual_minutes) FILTER (WHERE status = 'held'), 0) AS minutes,
           min(held_at) AS first_held, max(held_at) AS last_held
    FROM {s}.sessions WHERE pair_id = $1),
mood AS (
    SELECT mood, recorded_at FROM {s}.check_ins WHERE pair_id = $1
    ORDER BY recorded_at DESC, check_in_id DESC LIMIT 1),
surveys AS (
    SELECT coalesce(array_agg(score ORDER BY answered_at, assignment_id)
                    FILTER (WHERE kind = 'session_feedback' AND status = 'answered' AND score IS NOT NULL), '{{}}') AS feedback,
           max(answered_at) FILTER (WHERE kind = 'session_feedback' AND status = 'answered') AS last_feedback,
           coalesce(array_agg(due_at ORDER BY due_at) FILTER (WHERE status = 'open'), '{{}}') AS open_due,
           count(*) FILTER (WHERE status <> 'cancelled') AS due,
           count(*) FILTER (WHERE status = 'answered') AS answered,
           avg(score) FILTER (WHERE kind = 'digital_maturity' AND phase = 'pre' AND status = 'answered') AS pre,
           avg(score) FILTER (WHERE kind = 'digital_maturity' AND phase = 'post' AND status = 'answered') AS post
    FROM {s}.assignments WHERE pair_id = $1),
budget AS (
    SELECT m.month, m.exceeded_at FROM {s}.mentor_months m JOIN {s}.pairs p ON p.mentor_id = m.mentor_id
    WHERE p.pair_id = $1 AND m.exceeded_at IS NOT NULL ORDER BY m.month DESC LIMIT 1)
INSERT INTO {s}.pair_activity AS a (
    pair_id, sessions_held, sessions_cancelled, late_cancellations, no_shows, minutes_held, first_held_at,
    last_held_at, last_mood, last_mood_at, feedback_scores, last_feedback_at, open_survey_due, surveys_due,
    surveys_answered, maturity_pre, maturity_post, budget_exceeded_month, budget_exceeded_at)
SELECT $1, ses.held, ses.cancelled, ses.late, ses.no_shows, ses.minutes, ses.first_held, ses.last_held,
       mood.mood, mood.recorded_at, surveys.feedback, surveys.last_feedback, surveys.open_due, surveys.due,
       surveys.answered, surveys.pre, surveys.post, budget.month, budget.exceeded_at
FROM ses CROSS JOIN surveys LEFT JOIN mood ON true LEFT JOIN budget ON true
ON CONFLICT (pair_id) DO UPDATE SET
    sessions_held = EXCLUDED.sessions_held, sessions_cancelled = EXCLUDED.sessions_cancelled,
    late_cancellations = EXCLUDED.late_cancellations, no_shows = EXCLUDED.no_shows,
    minutes_held = EXCLUDED.minutes_held, first_held_at = EXCLUDED.first_held_at,
    last_held_at = EXCLUDED.last_held_at, last_mood = EXCLUDED.last_mood, last_mood_at = EXCLUDED.last_mood_at,
    feedback_scores = EXCLUDED.feedback_scores, last_feedback_at = EXCLUDED.last_feedback_at,
    open_survey_due = EXCLUDED.open_survey_due, surveys_due = EXCLUDED.surveys_due,
    surveys_answered = EXCLUDED.surveys_answered, maturity_pre = EXCLUDED.maturity_pre,
    maturity_post = EXCLUDED.maturity_post, budget_exceeded_month = EXCLUDED.budget_exceeded_month,
    budget_exceeded_at = EXCLUDED.budget_exceeded_at
"""


async def refresh(conn: asyncpg.Connection, schema: str, pair_ids: Iterable[UUID]) -> None:
    """Recompute the rows of ``pair_ids``: one pipelined round trip (sorted,
    so two transactions refreshing the same pairs lock them in one order)."""
    ids = sorted(set(pair_ids))
    if ids:
        await conn.executemany(_REFRESH.format(s=schema), [(pair_id,) for pair_id in ids])
