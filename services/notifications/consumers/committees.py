"""The consumer that tells committees which pairs need attention: it files
each ``PairNeedsAttention`` of insights (the daily evaluation of pair
health) for the digest of the pair's committee, and schedules that digest
(service_layer/digest.py). Runs in the consumer runtime's transaction, which
applies each event once."""

from __future__ import annotations

import asyncpg

from libs.events.contexts import insights
from libs.events.envelope import Envelope
from libs.messaging.dispatch import Consumer
from services.notifications.service_layer.digest import Digests
from services.notifications.service_layer.scheduler import Scheduler

NAME = "notifications-committees"


class Committees(Consumer):
    name = NAME
    contexts = ("insights",)

    def __init__(self, digests: Digests, scheduler: Scheduler, name: str = NAME) -> None:
        self.name = name
        self.digests, self.scheduler = digests, scheduler

    async def on_PairNeedsAttention(  # noqa: N802
        self, conn: asyncpg.Connection, envelope: Envelope, event: insights.PairNeedsAttention
    ) -> None:
        await self.digests.file(
            conn, self.scheduler, organisation=envelope.tenant, country=event.country, pair_id=event.pair_id,
            mentee_id=event.mentee_id, mentor_id=event.mentor_id, status=event.status, reasons=event.reasons,
            evaluated_on=event.evaluated_on, evaluated_at=event.evaluated_at,
        )

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Nothing to forget: the filed pairs record which digest listed them,
        so a replay files nothing twice and writes to no committee again."""
