"""GDPR retention of ended pairs' free-text notes.

A programme sets ``notes_retention_days`` (enrollment's settings, copied in
matching's ``programmes``; 365 days unless set). Once a declined, dissolved
or completed pair ended that long ago, its notes are erased the way a person
is: the pair's data key is shredded (every note sealed with it, in matching's
log and in sessions', now reads as erased), then ``PairNotesExpired``
(no personal data) tells the other services to drop the pair's free text
from their read models.

``expire_notes`` runs periodically (``RetentionWorker``, supervised by the
platform) and on demand (``POST /v1/retention:expire-notes``). Shredding
comes first: a crash between the two steps leaves the pair due, and the next
run shreds again (idempotent) and records the event. Two runners racing on
one pair: one appends, the other's append conflicts and is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from libs.events.contexts.enrollment import Actor
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import ConcurrencyError
from libs.gdpr.vault import KeyVault
from services.matching.domain.pair import Pair

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 365
RETENTION_ACTOR = Actor(subject="service:matching", client_id="retention")
#: How often the worker looks for notes past their time.
INTERVAL = timedelta(hours=1)


def system_clock() -> datetime:
    return datetime.now(UTC)


def due_sql(schema: str) -> str:
    s = check_schema_name(schema)
    return f"""
        SELECT p.pair_id, (p.doc -> 'ended' ->> 'at')::timestamptz AS ended_at,
               coalesce((g.settings ->> 'notes_retention_days')::int, {DEFAULT_RETENTION_DAYS}) AS days
        FROM {s}.pairs p LEFT JOIN {s}.programmes g ON g.programme_id = p.programme_id
        WHERE p.status IN ('declined', 'dissolved', 'completed') AND NOT p.doc ? 'notes_expired'
          AND ($2::text IS NULL OR p.organisation = $2)
          AND (p.doc -> 'ended' ->> 'at')::timestamptz
              + make_interval(days => coalesce((g.settings ->> 'notes_retention_days')::int,
                                               {DEFAULT_RETENTION_DAYS})) <= $1
        ORDER BY ended_at, p.pair_id
        LIMIT $3"""


async def expire_notes(
    matching, vault: KeyVault, now: datetime, organisation: str | None = None, limit: int = 500
) -> list[UUID]:
    """Expire the notes of every pair past its retention at ``now`` (of one
    organisation, or all); return the pairs expired by this call."""
    rows = await matching.pool.fetch(due_sql(matching.store.schema), now, organisation, limit)
    expired: list[UUID] = []
    for row in rows:
        pair_id = row["pair_id"]
        await vault.shred_key(pair_id)
        async with matching.pool.acquire() as conn, conn.transaction():
            uow = matching.unit_of_work(conn)
            pair = await uow.repo.get(Pair, pair_id)
            if pair is None or pair.notes_expired:
                continue
            pair.expire_notes(RETENTION_ACTOR, row["ended_at"], row["days"])
            try:
                await uow.repo.add(pair)
            except ConcurrencyError:
                continue  # another runner expired it meanwhile
        expired.append(pair_id)
    if expired:
        log.info("retention: notes of %d ended pair(s) expired", len(expired))
    return expired


class RetentionWorker:
    """Runs ``expire_notes`` every ``interval`` until ``stop`` (``binome up``
    supervises it, restarting it if it fails)."""

    def __init__(
        self, matching, vault: KeyVault, clock: Callable[[], datetime], interval: timedelta = INTERVAL
    ) -> None:
        self.matching, self.vault, self.clock, self.interval = matching, vault, clock, interval

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            while await expire_notes(self.matching, self.vault, self.clock()):
                if stop.is_set():
                    return
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval.total_seconds())
            except TimeoutError:
                pass
