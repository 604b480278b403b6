"""The wave calendar: waves close their enrolment and end on their dates by
themselves, on the platform clock (issue 19).

A wave's enrolment closes when its ``enrolment_closes_on`` day begins; a
wave ends once its ``ends_on`` day is over (its enrolment closed first if it
was still open). Days are UTC. The actor of these events is
``CALENDAR_ACTOR``: that is how the committee (and the notifications
service) tells a wave that closed by itself from one it closed. Matching
completes the ended wave's formed pairs on ``WaveEnded``, and evaluation
assigns their closing surveys on ``PairCompleted``.

``run_due`` is a scheduled job (libs/runtime/scheduler.py): it finds the
waves due from the read table on every tick, and each wave changes in its
own transaction with the wave's row locked (enrolments into it serialise
with the closing, as for the committee's command) and the append's expected
version: a second runner, or a committee closing the wave meanwhile, makes
it skip that wave.
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.events.contexts.enrollment import Actor
from libs.eventstore.store import ConcurrencyError
from services.enrollment.domain.wave import Wave

CALENDAR_ACTOR = Actor(subject="service:enrollment", client_id="wave-calendar")
#: Waves changed per transaction batch of one tick (the next tick takes the rest).
BATCH = 200


async def run_due(enrollment, now: datetime, limit: int = BATCH) -> int:
    """Close or end every wave due at ``now``; return how many changed."""
    today = now.astimezone(UTC).date()
    s = enrollment.store.schema
    due = await enrollment.pool.fetch(
        f"""SELECT wave_id FROM {s}.waves
            WHERE status <> 'ended' AND (ends_on < $1 OR (status = 'open' AND enrolment_closes_on <= $1))
            ORDER BY ends_on, wave_id LIMIT $2""",
        today, limit,
    )
    changed = 0
    for row in due:
        try:
            async with enrollment.pool.acquire() as conn, conn.transaction():
                uow = enrollment.unit_of_work(conn)
                await uow.views.lock_wave(conn, row["wave_id"])
                wave = await uow.repo.get(Wave, row["wave_id"])
                if wave is None or not wave.close_on_schedule(today, CALENDAR_ACTOR):
                    continue
                await uow.repo.add(wave)
        except ConcurrencyError:
            continue  # changed meanwhile (another runner, the committee): the next tick looks again
        changed += 1
    return changed
