"""The key vault: one data key per participant (and per pair, for what two
people wrote together), kept outside the event log and wrapped by its
region's master key.

Erasing a participant deletes every key they own; whatever those keys sealed
in the log is unreadable from then on, in every copy (topics, replays,
backups of the log). An erased key id never gets a new key, and an erased
participant never owns a new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import asyncpg

from libs.eventstore.migrations import check_schema_name, migrate_directories
from libs.gdpr.cipher import new_data_key
from libs.gdpr.masters import MasterKeys

MIGRATIONS = Path(__file__).parent / "migrations"


class KeyShredded(LookupError):
    """The key was erased: nothing new may be sealed with it."""


async def migrate_vault(conn: asyncpg.Connection, schema: str) -> list[str]:
    return await migrate_directories(conn, schema, MIGRATIONS)


class KeyVault:
    """Keys in ``schema`` of the vault's own database (``pool``): with a
    database per service, every service reaches the one vault, and only it."""

    def __init__(self, pool: asyncpg.Pool, schema: str, masters: MasterKeys) -> None:
        self.pool = pool
        self.schema = check_schema_name(schema)
        self.masters = masters

    async def key_for(
        self,
        key_id: uuid.UUID,
        owners: Iterable[uuid.UUID],
        country: str | None,
        *,
        conn: asyncpg.Connection | None = None,
    ) -> bytes:
        """The data key ``key_id``, created on first use; raises KeyShredded
        if it was erased (or would be created for an erased owner). ``conn``: a connection of the vault's database the
        caller holds (its transaction then owns a key it creates), so that a
        writer never waits for a second connection of the same pool."""
        if conn is not None:
            return await self._key_for(conn, key_id, owners, country)
        async with self.pool.acquire() as own:
            return await self._key_for(own, key_id, owners, country)

    async def _key_for(
        self, conn: asyncpg.Connection, key_id: uuid.UUID, owners: Iterable[uuid.UUID], country: str | None
    ) -> bytes:
        row = await self._existing_or_created(conn, key_id, sorted(set(owners)), country)
        return self.masters.unwrap(row["region"], row["wrapped_key"])

    async def _existing_or_created(
        self, conn: asyncpg.Connection, key_id: uuid.UUID, owners: list[uuid.UUID], country: str | None
    ) -> asyncpg.Record:
        """The key as stored, or created now, in one statement (one round trip:
        each enrolment makes one key, its participant's, and a look-up first
        would always miss), unless it was shredded or one of its owners is
        erased: an erased person owns no key made after the erasure, which
        would never be shredded (a pair's key the pair never needed before,
        for a note about a pair whose member was erased). A key that exists
        was not shredded (shredding deletes it), so it is answered as it is;
        the new key wrapped for the statement is then dropped unused."""
        region = self.masters.region_of(country)
        wrapped = self.masters.wrap(region, new_data_key())
        s = self.schema
        found = await conn.fetchrow(
            f"""WITH existing AS (
                    SELECT region, wrapped_key FROM {s}.data_keys WHERE key_id = $1
                ), refused AS (
                    SELECT 1 FROM {s}.shredded_keys WHERE key_id = $1
                    UNION ALL SELECT 1 FROM {s}.erased WHERE participant_id = ANY($2::uuid[])
                ), created AS (
                    INSERT INTO {s}.data_keys (key_id, owners, region, wrapped_key)
                    SELECT $1, $2, $3, $4
                    WHERE NOT EXISTS (SELECT 1 FROM existing) AND NOT EXISTS (SELECT 1 FROM refused)
                    ON CONFLICT (key_id) DO NOTHING
                    RETURNING region, wrapped_key
                )
                SELECT NOT EXISTS (SELECT 1 FROM existing) AND EXISTS (SELECT 1 FROM refused) AS refused,
                       coalesce(e.region, c.region) AS region, coalesce(e.wrapped_key, c.wrapped_key) AS wrapped_key
                FROM (SELECT 1) AS one LEFT JOIN existing e ON true LEFT JOIN created c ON true""",
            key_id,
            owners,
            region,
            wrapped,
        )
        if found["refused"]:
            raise KeyShredded(str(key_id))
        if found["wrapped_key"] is not None:
            return found
        # Two writers created the same key at once: the first one won, and
        # both use its key.
        return await conn.fetchrow(f"SELECT region, wrapped_key FROM {s}.data_keys WHERE key_id = $1", key_id)

    async def keys(
        self, key_ids: Iterable[uuid.UUID], *, conn: asyncpg.Connection | None = None
    ) -> dict[uuid.UUID, bytes]:
        """The data keys that still exist among ``key_ids`` (erased ones are absent)."""
        rows = await (conn or self.pool).fetch(
            f"SELECT key_id, region, wrapped_key FROM {self.schema}.data_keys WHERE key_id = ANY($1::uuid[])",
            list(set(key_ids)),
        )
        return {r["key_id"]: self.masters.unwrap(r["region"], r["wrapped_key"]) for r in rows}

    async def erase(
        self, participant_id: uuid.UUID, event_id: uuid.UUID | None = None, context: str = "enrollment"
    ) -> list[uuid.UUID]:
        """Shred every key ``participant_id`` owns; return their ids.
        ``event_id``: the erasure event (``ParticipantErased``; the
        directory's ``PersonErased``, ``context`` "directory"), which every
        service's consumers of ``context`` apply before the erasure completes
        on disk (compaction.py)."""
        async with self.pool.acquire() as conn, conn.transaction():
            shredded = [
                r["key_id"]
                for r in await conn.fetch(
                    f"DELETE FROM {self.schema}.data_keys WHERE $1 = ANY(owners) RETURNING key_id", participant_id
                )
            ]
            # The participant's own key id is the participant id: shred it even
            # if nothing was ever sealed with it, so it can never be created.
            await conn.execute(
                f"""INSERT INTO {self.schema}.shredded_keys (key_id)
                    SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING""",
                list({*shredded, participant_id}),
            )
            await conn.execute(
                f"""INSERT INTO {self.schema}.erased (participant_id, event_id, context) VALUES ($1, $2, $3)
                    ON CONFLICT (participant_id)
                    DO UPDATE SET event_id = coalesce(erased.event_id, EXCLUDED.event_id)""",
                participant_id,
                event_id,
                context,
            )
        return sorted(shredded)

    async def shred_key(self, key_id: uuid.UUID) -> bool:
        """Shred one data key (retention: a pair's notes past their time);
        it can never be created again. True if a key existed."""
        async with self.pool.acquire() as conn, conn.transaction():
            existed = await conn.fetchval(
                f"DELETE FROM {self.schema}.data_keys WHERE key_id = $1 RETURNING true", key_id
            )
            await conn.execute(
                f"INSERT INTO {self.schema}.shredded_keys (key_id) VALUES ($1) ON CONFLICT DO NOTHING", key_id
            )
        return bool(existed)

    async def is_shredded(self, key_id: uuid.UUID) -> bool:
        return bool(
            await self.pool.fetchval(f"SELECT 1 FROM {self.schema}.shredded_keys WHERE key_id = $1", key_id)
        )

    # -- erasure on disk (compaction.py) -------------------------------------------

    async def register_compactor(self, service: str) -> None:
        """From now on, an erasure completes only once ``service`` rewrote its files."""
        await self.pool.execute(
            f"INSERT INTO {self.schema}.compactors (service) VALUES ($1) ON CONFLICT DO NOTHING", service
        )

    async def pending_compactions(self, service: str) -> list[tuple[uuid.UUID, uuid.UUID | None, str]]:
        """(person id, erasure event id, its context) of erasures ``service`` has not compacted."""
        rows = await self.pool.fetch(
            f"""SELECT e.participant_id, e.event_id, e.context FROM {self.schema}.erased e
                WHERE NOT EXISTS (SELECT 1 FROM {self.schema}.compactions c
                                  WHERE c.participant_id = e.participant_id AND c.service = $1)
                ORDER BY e.erased_at""",
            service,
        )
        return [(r["participant_id"], r["event_id"], r["context"]) for r in rows]

    async def mark_compacted(self, service: str, participant_ids: Iterable[uuid.UUID]) -> None:
        await self.pool.execute(
            f"""INSERT INTO {self.schema}.compactions (participant_id, service)
                SELECT unnest($1::uuid[]), $2 ON CONFLICT DO NOTHING""",
            list(participant_ids),
            service,
        )

    async def erasure_status(self, participant_id: uuid.UUID) -> dict[str, object] | None:
        """None if not erased; else ``status`` ("pending" until every
        registered service compacted, then "completed") and ``completed_at``."""
        return (await self.erasure_statuses([participant_id])).get(participant_id)

    async def erasure_statuses(self, participant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, object]]:
        """``erasure_status`` of each erased participant among ``participant_ids``."""
        rows = await self.pool.fetch(
            f"""SELECT e.participant_id,
                       (SELECT count(*) FROM {self.schema}.compactors k WHERE NOT EXISTS (
                            SELECT 1 FROM {self.schema}.compactions c
                            WHERE c.participant_id = e.participant_id AND c.service = k.service)) AS waiting,
                       (SELECT max(compacted_at) FROM {self.schema}.compactions c
                        WHERE c.participant_id = e.participant_id) AS last
                FROM {self.schema}.erased e WHERE e.participant_id = ANY($1::uuid[])""",
            list(set(participant_ids)),
        )
        statuses = {}
        for row in rows:
            done = row["waiting"] == 0 and row["last"] is not None
            statuses[row["participant_id"]] = {
                "status": "completed" if done else "pending",
                "completed_at": row["last"] if done else None,
            }
        return statuses

    @property
    def key_tables(self) -> list[str]:
        """The tables whose files hold wrapped keys (rewritten after an erasure)."""
        return [f"{self.schema}.data_keys"]

    async def is_erased(self, participant_id: uuid.UUID) -> bool:
        return bool(await self.pool.fetchval(f"SELECT 1 FROM {self.schema}.erased WHERE participant_id = $1", participant_id))
