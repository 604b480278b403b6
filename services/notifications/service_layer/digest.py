"""The committee digest: once a day, one message per committee (organisation
and country) listing the pairs insights found worse that day
(``PairNeedsAttention``), not one mail per pair.

The consumer (consumers/committees.py) files each pair in
``attention_pairs`` and schedules the committee's digest of that day as a
due job (``committee_digest:<organisation>:<country>:<day>``), due
``WINDOW`` after the evaluation: insights evaluates every pair of the day in
one transaction, so the day's pairs arrive together, and the window lets
them all in. The job lists every pair still waiting for the committee; a
pair filed after its day's digest went out waits for the next day's. The
message is named by the job, so a committee gets at most one digest per day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from services.notifications.adapters.rendering import day
from services.notifications.domain.kinds import Kind
from services.notifications.service_layer.committees import Contacts, committee_id
from services.notifications.service_layer.messages import Messages

if TYPE_CHECKING:  # the scheduler runs the digests: imported for the type only
    from services.notifications.service_layer.scheduler import Scheduler

COMMITTEE_DIGEST = "committee_digest"
#: How long after the day's evaluation the digest waits for the day's pairs.
WINDOW = timedelta(minutes=15)


def job_id_of(organisation: str, country: str, on: date) -> str:
    return f"{COMMITTEE_DIGEST}:{organisation}:{country}:{on.isoformat()}"


class Digests:
    def __init__(self, messages: Messages) -> None:
        self.messages = messages
        s = self.schema = messages.schema
        self.contacts = Contacts(s)
        self._sql_file = f"""
            INSERT INTO {s}.attention_pairs (pair_id, evaluated_on, organisation, country, mentee_id, mentor_id,
                                             status, reasons, evaluated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"""
        self._sql_job_done = f"SELECT done_at IS NOT NULL FROM {s}.due_jobs WHERE job_id = $1"
        self._sql_waiting = f"""
            UPDATE {s}.attention_pairs SET digest_job = $3
            WHERE organisation = $1 AND country = $2 AND digest_job IS NULL
            RETURNING pair_id, mentee_id, mentor_id, status, reasons, evaluated_at"""
        self._sql_names = f"SELECT participant_id, display_name FROM {s}.recipients WHERE participant_id = ANY($1::uuid[])"

    # -- the consumer's side ------------------------------------------------------------

    async def file(self, conn: asyncpg.Connection, scheduler: Scheduler, *, organisation: str, country: str,
                   pair_id: UUID, mentee_id: UUID, mentor_id: UUID, status: str, reasons: list[str],
                   evaluated_on: date, evaluated_at: datetime) -> None:
        """File a pair for its committee's digest and make sure a digest is due."""
        await conn.execute(self._sql_file, pair_id, evaluated_on, organisation, country, mentee_id, mentor_id,
                           status, reasons, evaluated_at)
        on, due = evaluated_on, evaluated_at + WINDOW
        while await conn.fetchval(self._sql_job_done, job_id_of(organisation, country, on)):
            on, due = on + timedelta(days=1), due + timedelta(days=1)  # that day's went out: the next day's
        await scheduler.schedule(conn, job_id_of(organisation, country, on), organisation, COMMITTEE_DIGEST,
                                 committee_id(organisation, country), due, {"country": country})

    # -- the due job ----------------------------------------------------------------------

    async def send(self, conn: asyncpg.Connection, job_id: str, organisation: str, country: str) -> int:
        """Queue the committee's digest of every pair waiting for it; 0 when
        none waits or the committee has no address (the pairs stay listed in
        insights' health views)."""
        pairs = await conn.fetch(self._sql_waiting, organisation, country, job_id)
        committee = await self.contacts.committee(conn, organisation, country)
        if not pairs or committee is None:
            return 0
        ids = [p[k] for p in pairs for k in ("mentee_id", "mentor_id")]
        names = {r["participant_id"]: r["display_name"] for r in await conn.fetch(self._sql_names, ids)}
        language, zone = committee.language, committee.time_zone
        listed = [
            {
                "mentee": names.get(p["mentee_id"], "—"),
                "mentor": names.get(p["mentor_id"], "—"),
                "pair_id": str(p["pair_id"]),
                "status": p["status"],
                "reasons": list(p["reasons"]),
                "since": day(p["evaluated_at"], language, zone),
            }
            for p in sorted(pairs, key=lambda p: (p["status"] != "dormant", p["evaluated_at"], str(p["pair_id"])))
        ]
        values = {"country": country, "day": day(self.messages.clock(), language, zone), "pairs": listed}
        return await self.messages.to_committee(
            conn, committee=committee, kind=Kind.COMMITTEE_DIGEST, source_event_id=job_id, values=values
        )
