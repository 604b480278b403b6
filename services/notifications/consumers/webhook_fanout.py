"""Every event of every business context -> due webhook deliveries.

One consumer reads every context's topic except the notifications context's
own (a delivery would cause a delivery) and the platform's probes. For each
event it looks up the enabled endpoints of the event's organisation
(``tenant``) that want it (domain/webhooks.py: type patterns, a committee
endpoint's countries) and were registered before the event happened (a
replay never sends history to an endpoint registered later), and inserts one
due delivery per endpoint, in the runtime's transaction, with the body that
will be sent (personal fields withheld). ``UNIQUE (endpoint_id, event_id)``
keeps a redelivered event from queueing twice.

It has no ``on_<EventClassName>`` method per type: every type takes the same
path, so ``handler_for`` answers ``fan_out`` for all, and ``handled_types``
lists every type of its contexts (``binome events``).
"""

from __future__ import annotations

import uuid

import asyncpg

from libs.database import jsonb
from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent, EventRegistry, registry
from libs.eventstore.migrations import check_schema_name
from libs.messaging.dispatch import Consumer, Handler
from libs.runtime.clock import Clock, system_clock
from services.notifications.domain.webhooks import NOT_PUSHED, body_of, wants

def pushed_contexts(events: EventRegistry = registry) -> tuple[str, ...]:
    return tuple(sorted(c for c in events.by_context() if c not in NOT_PUSHED))


class WebhookFanout(Consumer):
    name = "notifications-webhooks"
    contexts = pushed_contexts()
    opens_personal_values = False  # every personal field is withheld from the body

    def __init__(
        self, schema: str, *, clock: Clock = system_clock, name: str | None = None, events: EventRegistry = registry
    ) -> None:
        self.schema = check_schema_name(schema)
        self.clock, self.events = clock, events
        self.name = name or type(self).name
        s = self.schema
        self._sql_endpoints = f"""
            SELECT endpoint_id, event_types, countries FROM {s}.webhook_endpoints
            WHERE organisation = $1 AND enabled AND created_at <= $2"""
        self._sql_queue = f"""
            INSERT INTO {s}.webhook_deliveries
                (delivery_id, endpoint_id, organisation, event_id, event_type, body, status, due_at, created_at)
            SELECT d, e, $3, $4, $5, $6::jsonb, 'pending', $7, $7 FROM unnest($1::uuid[], $2::uuid[]) AS x(d, e)
            ON CONFLICT (endpoint_id, event_id) DO NOTHING"""

    def handler_for(self, event: DomainEvent) -> Handler | None:
        return self.fan_out

    def handles(self, model: type[DomainEvent]) -> bool:
        return True  # every type of its contexts, as handler_for says

    @classmethod
    def handled_types(cls) -> tuple[str, ...]:
        by_context = registry.by_context()
        return tuple(sorted({m.__name__ for c in cls.contexts for m in by_context.get(c, ())}))

    async def fan_out(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        endpoints = await conn.fetch(self._sql_endpoints, envelope.tenant, envelope.time)
        targets = [
            r["endpoint_id"]
            for r in endpoints
            if wants(envelope, organisation=envelope.tenant, event_types=r["event_types"], countries=r["countries"])
        ]
        if not targets:
            return
        body = jsonb(body_of(envelope, self.events))
        await conn.execute(
            self._sql_queue,
            [uuid.uuid4() for _ in targets], targets, envelope.tenant, envelope.id, envelope.type, body, self.clock(),
        )

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Nothing to empty: deliveries record what was (or will be) sent, not
        a view of the log; a replay re-queues nothing already queued."""
