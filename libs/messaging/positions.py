"""Where each consumer stands in each source's log.

The relay stamps every record with header ``binome-position``: the event's
``position`` in its source service's event store (ASCII decimal). In the
transaction of each applied batch a consumer upserts, per source context, the
greatest position among the records it dealt with (applied, skipped as
duplicates or unknown, parked) into ``consumer_positions``. Lag is then
measured against the log itself (the source's newest position minus this
one), whatever the broker says. Records without the header (older relays,
hand-made records) are ignored here; they are still applied.

The position is the greatest seen, not a low-water mark: partitions of one
topic advance independently, so a smaller position on another partition may
still be pending.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiokafka import ConsumerRecord

from libs.eventstore.migrations import check_schema_name

POSITION_HEADER = "binome-position"
_TOPIC = re.compile(r"binome\.(?P<context>[a-z0-9_-]+)\.events")


@dataclass(frozen=True)
class ConsumerPosition:
    consumer: str
    source: str
    position: int
    applied_at: datetime


def source_position(record: ConsumerRecord) -> int | None:
    """The record's ``binome-position`` header, or None when absent or not a number."""
    for name, value in record.headers or ():
        if name == POSITION_HEADER and value is not None:
            text = bytes(value).decode("ascii", "replace")
            return int(text) if text.isdigit() else None
    return None


def source_context(topic: str, prefix: str = "") -> str | None:
    """The context of ``<prefix>binome.<context>.events``; None for other topics."""
    if not topic.startswith(prefix):
        return None
    match = _TOPIC.fullmatch(topic[len(prefix) :])
    return match["context"] if match else None


def newest_positions(records: Iterable[ConsumerRecord], prefix: str = "") -> dict[str, int]:
    """Per source context, the greatest position among ``records`` that carry one."""
    newest: dict[str, int] = {}
    for record in records:
        context, position = source_context(record.topic, prefix), source_position(record)
        if context is not None and position is not None and position > newest.get(context, -1):
            newest[context] = position
    return newest


async def record_positions(conn: asyncpg.Connection, schema: str, consumer: str, positions: dict[str, int]) -> None:
    """Move ``consumer``'s positions forward (never back), inside the caller's transaction.

    Sources in sorted order: two members of one group lock the rows in the
    same order and never deadlock.
    """
    if not positions:
        return
    s = check_schema_name(schema)
    sources = sorted(positions)
    await conn.execute(
        f"""INSERT INTO {s}.consumer_positions AS p (consumer, source, position)
            SELECT $1, source, position FROM unnest($2::text[], $3::bigint[]) AS t(source, position)
            ON CONFLICT (consumer, source) DO UPDATE
                SET position = EXCLUDED.position, applied_at = clock_timestamp()
                WHERE EXCLUDED.position > p.position""",
        consumer,
        sources,
        [positions[source] for source in sources],
    )


async def read_positions(db: asyncpg.Pool | asyncpg.Connection, schema: str) -> list[ConsumerPosition]:
    """Every consumer's position per source in ``schema`` (for lag metrics)."""
    s = check_schema_name(schema)
    rows = await db.fetch(
        f"SELECT consumer, source, position, applied_at FROM {s}.consumer_positions ORDER BY consumer, source"
    )
    return [ConsumerPosition(**dict(r)) for r in rows]
