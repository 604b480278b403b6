"""The copies evaluation keeps of other contexts' facts (``ref_*`` tables)
and the triggers waiting for one of them (``deferred_triggers``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from libs.events.envelope import Envelope
from libs.events.serialization import dumps, loads
from libs.eventstore.migrations import check_schema_name
from services.evaluation.adapters.erasure import without_personal_values
from services.evaluation.domain.assignments import Pair

REF_TABLES = ("ref_programmes", "ref_waves", "ref_pairs", "ref_participants", "deferred_triggers")


class References:
    def __init__(self, schema: str) -> None:
        self.s = check_schema_name(schema)

    async def put_programme(self, conn: asyncpg.Connection, programme_id: UUID, organisation: str,
                            languages: list[str]) -> None:
        await conn.execute(
            f"""INSERT INTO {self.s}.ref_programmes (programme_id, organisation, languages) VALUES ($1, $2, $3)
                ON CONFLICT (programme_id) DO UPDATE SET languages = EXCLUDED.languages""",
            programme_id, organisation, languages,
        )

    async def programme_languages(self, db: Any, programme_id: UUID, organisation: str) -> list[str] | None:
        return await db.fetchval(
            f"SELECT languages FROM {self.s}.ref_programmes WHERE programme_id = $1 AND organisation = $2",
            programme_id, organisation,
        )

    async def put_participant(self, conn: asyncpg.Connection, participant_id: UUID, organisation: str,
                              languages: list[str]) -> None:
        await conn.execute(
            f"""INSERT INTO {self.s}.ref_participants (participant_id, organisation, languages) VALUES ($1, $2, $3)
                ON CONFLICT (participant_id) DO UPDATE SET languages = EXCLUDED.languages""",
            participant_id, organisation, languages,
        )

    async def participant_languages(self, db: Any, participant_id: UUID) -> list[str] | None:
        """The languages of the participant's profile, preference first (None: not known)."""
        return await db.fetchval(
            f"SELECT languages FROM {self.s}.ref_participants WHERE participant_id = $1", participant_id
        )

    async def put_wave(self, conn: asyncpg.Connection, wave_id: UUID, programme_id: UUID, organisation: str,
                       country: str, region: str) -> None:
        await conn.execute(
            f"""INSERT INTO {self.s}.ref_waves (wave_id, programme_id, organisation, country, region)
                VALUES ($1, $2, $3, $4, $5) ON CONFLICT (wave_id) DO NOTHING""",
            wave_id, programme_id, organisation, country, region,
        )

    async def put_pair(self, conn: asyncpg.Connection, pair: Pair, organisation: str) -> None:
        await conn.execute(
            f"""INSERT INTO {self.s}.ref_pairs (pair_id, organisation, programme_id, wave_id, country,
                                                mentee_id, mentor_id, status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'formed') ON CONFLICT (pair_id) DO NOTHING""",
            pair.pair_id, organisation, pair.programme_id, pair.wave_id, pair.country, pair.mentee_id,
            pair.mentor_id,
        )

    async def pair(self, conn: asyncpg.Connection, pair_id: UUID) -> tuple[Pair, str] | None:
        """The pair and its status, or None if it has not formed (yet)."""
        row = await conn.fetchrow(f"SELECT * FROM {self.s}.ref_pairs WHERE pair_id = $1", pair_id)
        if row is None:
            return None
        pair = Pair(row["pair_id"], row["programme_id"], row["wave_id"], row["country"], row["mentee_id"],
                    row["mentor_id"])
        return pair, row["status"]

    async def set_pair_status(self, conn: asyncpg.Connection, pair_id: UUID, status: str) -> None:
        await conn.execute(f"UPDATE {self.s}.ref_pairs SET status = $2 WHERE pair_id = $1", pair_id, status)

    async def defer(self, conn: asyncpg.Connection, envelope: Envelope, waiting_for: str) -> None:
        # The trigger is kept for its ids and facts: personal values are withheld.
        envelope = without_personal_values(envelope)
        await conn.execute(
            f"""INSERT INTO {self.s}.deferred_triggers (event_id, waiting_for, envelope) VALUES ($1, $2, $3::jsonb)
                ON CONFLICT (event_id) DO NOTHING""",
            envelope.id, waiting_for, dumps(envelope).decode(),
        )

    async def take_deferred(self, conn: asyncpg.Connection, waiting_for: str) -> list[Envelope]:
        rows = await conn.fetch(
            f"DELETE FROM {self.s}.deferred_triggers WHERE waiting_for = $1 RETURNING seq, envelope::text",
            waiting_for,
        )
        return [loads(r[1]) for r in sorted(rows, key=lambda r: r[0])]

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {', '.join(f'{self.s}.{t}' for t in REF_TABLES)}")
