"""The insights projection: every context's events -> insights' read models.

One projection (one consumer group) reads the four contexts and files each
fact in its table (``enrollment.py``, ``matching.py``, ``sessions.py``,
``evaluation.py``); a handler returns the pairs whose ``pair_activity`` must
be recomputed (``activity.py``). Event types insights does not use are
applied as no-ops (recorded, so a replay skips them like the others).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent
from libs.eventstore.migrations import check_schema_name
from services.insights.health import gauges
from services.insights.projection import activity, enrollment, evaluation, matching, sessions

Handler = Callable[[asyncpg.Connection, str, Envelope, Any], Awaitable[list[UUID]]]
Clock = Callable[[], datetime]

HANDLERS: dict[type[DomainEvent], Handler] = {
    **enrollment.HANDLERS,
    **matching.HANDLERS,
    **sessions.HANDLERS,
    **evaluation.HANDLERS,
}

#: Every table the projection writes, emptied by a rebuild (not health_rules:
#: configuration, not facts).
READ_MODEL_TABLES = (
    "programmes", "waves", "participants", "pairs", "sessions", "check_ins",
    "mentor_months", "evaluation_settings", "assignments", "pair_activity",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class InsightsProjection:
    name = "insights"
    contexts = ("enrollment", "matching", "sessions", "evaluation")

    def __init__(self, schema: str, *, clock: Clock = utc_now, name: str = "insights") -> None:
        self.schema = check_schema_name(schema)
        self.clock = clock  # only for the business gauges: the read models never read it
        self.name = name

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        handler = HANDLERS.get(type(event))
        if handler is None:
            return
        touched = await handler(conn, self.schema, envelope, event)
        if touched:
            await activity.refresh(conn, self.schema, touched)
            if envelope.country:
                await gauges.refresh(conn, self.schema, envelope.country.upper(), self.clock())

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in READ_MODEL_TABLES)}")
