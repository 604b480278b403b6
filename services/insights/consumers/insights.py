"""The insights projection: every context's events -> insights' read models.

One projection (one consumer group) reads the four contexts and files each
fact in its table: its ``on_<EventClassName>`` methods come from one class
per context in ``services/insights/facts/`` (``enrollment.py``,
``matching.py``, ``sessions.py``, ``evaluation.py``); each returns the pairs
whose ``pair_activity`` must be recomputed (``facts/activity.py``). Event
types insights does not use have no method: applied as no-ops (recorded, so a
replay skips them like the others).

``handle_batch`` files a whole batch with a few pipelined statements
(``facts/batching.py``), recomputes each touched pair's activity once, and
refreshes the business gauges (``health/gauges.py``, the health of every
pair of a country) of each country it touched once, after the whole batch,
instead of once per event (10 % of the platform's CPU during ``binome demo``
before). A replay uses ``replay_batch``: the same, without the gauges.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent
from libs.eventstore.migrations import check_schema_name
from libs.messaging.dispatch import Consumer
from libs.observability.correlation import correlation
from libs.runtime.clock import Clock, system_clock
from services.insights.health import gauges
from services.insights.facts import activity
from services.insights.facts.batching import Deferred, layers, run_rounds
from services.insights.facts.enrollment import EnrollmentFacts
from services.insights.facts.evaluation import EvaluationFacts
from services.insights.facts.matching import MatchingFacts
from services.insights.facts.sessions import SessionsFacts

#: Every table the projection writes, emptied by a rebuild (not health_rules:
#: configuration, not facts).
READ_MODEL_TABLES = (
    "programmes", "waves", "participants", "pairs", "sessions", "check_ins",
    "mentor_months", "evaluation_settings", "assignments", "pair_activity",
)


class InsightsProjection(Consumer, EnrollmentFacts, MatchingFacts, SessionsFacts, EvaluationFacts):
    name = "insights"
    contexts = ("enrollment", "matching", "sessions", "evaluation")

    def __init__(self, schema: str, *, clock: Clock = system_clock, name: str = "insights") -> None:
        self.schema = check_schema_name(schema)
        self.clock = clock  # only for the business gauges: the read models never read it
        self.name = name

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        await self.handle_batch(conn, [(envelope, event)])

    async def handle_batch(self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]) -> None:
        """Apply the events (in their streams' order), then refresh the gauges
        of each country whose pairs they touched, once."""
        countries = await self._apply_all(conn, items)
        now = self.clock()
        for country in sorted(countries):
            await gauges.refresh(conn, self.schema, country, now)

    async def replay_batch(self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]) -> None:
        """``handle_batch`` without the gauges, for a replay: they are the
        serving process's metrics, which a replay command does not export, and
        recomputing every pair of a country per batch would cost more than
        the facts themselves (the live consumer refreshes them at its next
        batch)."""
        await self._apply_all(conn, items)

    async def _apply_all(self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]) -> set[str]:
        """File the events, layer by layer (``facts/batching.py``), then recompute the
        activity of every pair they touched, once; return the countries of those pairs."""
        touched: set[UUID] = set()
        countries: set[str] = set()
        for layer in layers([envelope for envelope, _ in items]):
            recorded = []
            for index in layer:
                envelope, event = items[index]
                handler = self.handler_for(event)
                if handler is None:
                    continue
                deferred = Deferred(conn)
                with correlation(envelope.correlationid):  # log lines of the handler carry it
                    pairs = await handler(deferred, envelope, event)
                recorded.append(deferred.statements)
                if pairs:
                    touched.update(pairs)
                    if envelope.country:
                        countries.add(envelope.country.upper())
            await run_rounds(conn, recorded)
        await activity.refresh(conn, self.schema, touched)
        return countries

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in READ_MODEL_TABLES)}")
