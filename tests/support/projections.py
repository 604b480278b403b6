"""A real projection for runtime tests: counts how often each event is applied."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from libs.events import DomainEvent, Envelope


@dataclass
class ProbeTally:
    """Read model ``probe_tally``: one row per event, with how often it was applied.

    ``fail_first`` names probe values whose first delivery raises (a transient
    fault); ``poison`` names values that always raise.
    """

    schema: str
    name: str = "probe-tally"
    contexts: tuple[str, ...] = ("platform",)
    fail_first: set[int] = field(default_factory=set)
    poison: set[int] = field(default_factory=set)
    attempts: dict[int, int] = field(default_factory=dict)

    async def create(self, pool: asyncpg.Pool) -> None:
        await pool.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.schema}.probe_tally (
                    event_id uuid PRIMARY KEY, subject text NOT NULL, sequence int NOT NULL,
                    value int NOT NULL, times int NOT NULL DEFAULT 1)"""
        )

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        value = event.value  # type: ignore[attr-defined]
        self.attempts[value] = self.attempts.get(value, 0) + 1
        if value in self.poison:
            raise ValueError(f"poison value {value}")
        if value in self.fail_first and self.attempts[value] == 1:
            raise ConnectionError("transient fault on first delivery")
        await conn.execute(
            f"""INSERT INTO {self.schema}.probe_tally (event_id, subject, sequence, value)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (event_id) DO UPDATE SET times = probe_tally.times + 1""",
            envelope.id, envelope.subject, envelope.sequence, value,
        )

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.schema}.probe_tally")

    async def rows(self, pool: asyncpg.Pool) -> list[asyncpg.Record]:
        return await pool.fetch(f"SELECT * FROM {self.schema}.probe_tally ORDER BY subject, sequence")


async def tally_count(pool: asyncpg.Pool, projection: ProbeTally, n: int) -> list[asyncpg.Record] | None:
    """The tally's rows once there are at least ``n`` (a ``wait_for`` predicate)."""
    rows = await projection.rows(pool)
    return rows if len(rows) >= n else None
