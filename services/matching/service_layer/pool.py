"""What a run or a choice sees of the candidate pool: queries over matching's
own tables, inside the command's transaction.

Seats: a mentor's seat is held by every pair of it that is proposed or
formed; its remaining capacity is its capacity minus those. Commands that
take seats first take the programme's seat lock (``lock_seats``), so two
concurrent runs or choices cannot both give away a mentor's last seat.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from libs.eventstore.migrations import check_schema_name
from services.matching.domain import PairConstraints
from services.matching.domain.pair import SEAT_HOLDING, PairStatus

_OPEN = [s.value for s in SEAT_HOLDING]
_ENDED_TOGETHER = [PairStatus.FORMED.value, PairStatus.DISSOLVED.value, PairStatus.COMPLETED.value]


def _record(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for name in ("profile", "settings"):
        if isinstance(out.get(name), str):
            out[name] = orjson.loads(out[name])
    return out


class PoolQueries:
    def __init__(self, schema: str) -> None:
        self.s = check_schema_name(schema)
        # The candidate's whole manager chain from the HR directory (consumers/reporting_lines.py).
        self.chain = f"{self.s}.manager_chain(c.organisation, c.employee_ref) AS manager_chain"

    async def lock_seats(self, conn: asyncpg.Connection, programme_id: UUID) -> None:
        """Serialise seat-taking commands of one programme until commit."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{self.s}.seats.{programme_id}")

    async def programme(self, conn: asyncpg.Connection, organisation: str, programme_id: UUID) -> dict[str, Any] | None:
        row = await conn.fetchrow(
            f"SELECT programme_id, mode, settings::text AS settings FROM {self.s}.programmes"
            " WHERE programme_id = $1 AND organisation = $2 AND mode IS NOT NULL",
            programme_id,
            organisation,
        )
        return _record(row) if row else None

    async def waves(self, conn: asyncpg.Connection, organisation: str, wave_ids: Iterable[UUID]) -> dict[UUID, dict]:
        rows = await conn.fetch(
            f"SELECT * FROM {self.s}.waves WHERE wave_id = ANY($1::uuid[]) AND organisation = $2",
            list(wave_ids),
            organisation,
        )
        return {r["wave_id"]: dict(r) for r in rows}

    async def candidate(self, conn: asyncpg.Connection, organisation: str, participant_id: UUID) -> dict | None:
        row = await conn.fetchrow(
            f"""SELECT c.*, w.starts_on, {self.chain} FROM {self.s}.candidates c
                JOIN {self.s}.waves w USING (wave_id)
                WHERE c.participant_id = $1 AND c.organisation = $2""",
            participant_id,
            organisation,
        )
        return _record(row) if row else None

    async def matchable(self, conn: asyncpg.Connection, wave_ids: Iterable[UUID], role: str) -> list[dict[str, Any]]:
        """Matchable people of ``role`` in the waves, by id."""
        rows = await conn.fetch(
            f"""SELECT c.*, w.starts_on, {self.chain} FROM {self.s}.candidates c
                JOIN {self.s}.waves w USING (wave_id)
                WHERE c.wave_id = ANY($1::uuid[]) AND c.role = $2 AND c.matchable
                ORDER BY c.participant_id""",
            list(wave_ids),
            role,
        )
        return [_record(r) for r in rows]

    async def seats_taken(self, conn: asyncpg.Connection, mentor_ids: Iterable[UUID]) -> dict[str, int]:
        rows = await conn.fetch(
            f"""SELECT mentor_id, count(*) AS n FROM {self.s}.pairs
                WHERE mentor_id = ANY($1::uuid[]) AND status = ANY($2::text[]) GROUP BY mentor_id""",
            list(mentor_ids),
            _OPEN,
        )
        return {str(r["mentor_id"]): r["n"] for r in rows}

    async def busy_mentees(self, conn: asyncpg.Connection, mentee_ids: Iterable[UUID]) -> set[str]:
        """Mentees with a pair proposed or formed: not in the pool now."""
        rows = await conn.fetch(
            f"""SELECT DISTINCT mentee_id FROM {self.s}.pairs
                WHERE mentee_id = ANY($1::uuid[]) AND status = ANY($2::text[])""",
            list(mentee_ids),
            _OPEN,
        )
        return {str(r[0]) for r in rows}

    async def interested_mentors(self, conn: asyncpg.Connection, mentee_id: UUID) -> set[str]:
        """Mentors who expressed interest in this mentee."""
        rows = await conn.fetch(f"SELECT mentor_id FROM {self.s}.interests WHERE mentee_id = $1", mentee_id)
        return {str(r[0]) for r in rows}

    async def interesting_mentees(self, conn: asyncpg.Connection, mentor_id: UUID) -> set[str]:
        """Mentees this mentor expressed interest in."""
        rows = await conn.fetch(f"SELECT mentee_id FROM {self.s}.interests WHERE mentor_id = $1", mentor_id)
        return {str(r[0]) for r in rows}

    async def open_pairs_of(self, conn: asyncpg.Connection, participant_id: UUID) -> list[UUID]:
        rows = await conn.fetch(
            f"""SELECT pair_id FROM {self.s}.pairs WHERE (mentee_id = $1 OR mentor_id = $1)
                AND status = ANY($2::text[]) ORDER BY pair_id""",
            participant_id,
            _OPEN,
        )
        return [r[0] for r in rows]

    async def open_pairs_in_wave(self, conn: asyncpg.Connection, wave_id: UUID) -> list[UUID]:
        """Proposed and formed pairs whose home (the mentee's wave) is ``wave_id``."""
        rows = await conn.fetch(
            f"SELECT pair_id FROM {self.s}.pairs WHERE wave_id = $1 AND status = ANY($2::text[]) ORDER BY pair_id",
            wave_id,
            _OPEN,
        )
        return [r[0] for r in rows]

    async def constraints(
        self, conn: asyncpg.Connection, mentee_ids: Iterable[UUID], pinned: Iterable[tuple[str, str]] = ()
    ) -> tuple[PairConstraints, int]:
        """HR exclusions, earlier partners and declined proposals of these
        mentees, and the number of exclusions in force."""
        ids = list(mentee_ids)
        pairs = await conn.fetch(
            f"SELECT mentee_id, mentor_id, status FROM {self.s}.pairs WHERE mentee_id = ANY($1::uuid[])", ids
        )
        excluded = await conn.fetch(
            f"SELECT mentee_id, mentor_id FROM {self.s}.exclusions WHERE mentee_id = ANY($1::uuid[]) AND NOT lifted",
            ids,
        )

        def of(rows: Iterable[asyncpg.Record]) -> frozenset[tuple[str, str]]:
            return frozenset((str(r["mentee_id"]), str(r["mentor_id"])) for r in rows)

        constraints = PairConstraints(
            pinned=tuple(pinned),
            excluded=of(excluded),
            earlier_partners=of(r for r in pairs if r["status"] in _ENDED_TOGETHER),
            declined=of(r for r in pairs if r["status"] == PairStatus.DECLINED.value),
        )
        return constraints, len(excluded)
