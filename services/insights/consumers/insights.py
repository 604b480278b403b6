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
before). A replay uses ``replay_batch``: the facts only; the activity of
every pair it touched is recomputed once at its end (``replay_done``).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent
from libs.eventstore.migrations import check_schema_name
from libs.messaging.dispatch import Consumer
from libs.observability.correlation import correlations, new_correlation_id
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
    #: Every row is keyed by the stream whose events write it (facts/batching.py):
    #: a replay may split the log among processes by stream.
    replays_by_stream = True
    #: Statistics only: no personal value is ever needed, nor stored here.
    opens_personal_values = False

    def __init__(self, schema: str, *, clock: Clock = system_clock, name: str = "insights") -> None:
        self.schema = check_schema_name(schema)
        self.clock = clock  # only for the business gauges: the read models never read it
        self.name = name
        self._replay_touched: set[UUID] = set()  # pairs whose activity ``replay_done`` recomputes

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        await self.handle_batch(conn, [(envelope, event)])

    async def handle_batch(self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]) -> None:
        """Apply the events (in their streams' order), recompute the activity
        of every pair they touched, once, then refresh the gauges of each
        country of those pairs, once."""
        touched, countries = await self._file(conn, items)
        await activity.refresh(conn, self.schema, touched)
        now = self.clock()
        for country in sorted(countries):
            await gauges.refresh(conn, self.schema, country, now)

    async def replay_batch(self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]) -> None:
        """``handle_batch`` for a replay: the facts only. The gauges are the
        serving process's metrics, which a replay command does not export
        (recomputing every pair of a country per batch would cost more than
        the facts; the live consumer refreshes them at its next batch); the
        activity of the pairs touched is recomputed once, in ``replay_done``,
        not once per batch that touches them (a pair's events are spread over
        months of log, so over many batches)."""
        touched, _ = await self._file(conn, items)
        self._replay_touched.update(touched)

    async def replay_done(self, conn: asyncpg.Connection) -> None:
        """After a replay's last batch: the activity of every pair it touched,
        the same recomputation the live path runs (a function of the facts,
        so the live consumer's refreshes meanwhile cannot make it differ)."""
        await activity.refresh(conn, self.schema, self._replay_touched)
        self._replay_touched = set()

    async def _file(
        self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]
    ) -> tuple[set[UUID], set[str]]:
        """File the events, layer by layer (``facts/batching.py``); return the
        pairs they touched and those pairs' countries."""
        touched: set[UUID] = set()
        countries: set[str] = set()
        # The id of the log lines of an event that carries none (old events):
        # one per batch, not a random one drawn per event.
        batch_correlation = new_correlation_id()
        for layer in layers([envelope for envelope, _ in items]):
            recorded = []
            with correlations() as use:  # log lines of a handler carry its event's id
                for index in layer:
                    envelope, event = items[index]
                    handler = self.handler_for(event)
                    if handler is None:
                        continue
                    deferred = Deferred(conn)
                    use(envelope.correlationid or batch_correlation)
                    pairs = await handler(deferred, envelope, event)
                    recorded.append(deferred.statements)
                    if pairs:
                        touched.update(pairs)
                        if envelope.country:
                            countries.add(envelope.country.upper())
            await run_rounds(conn, recorded)
        return touched, countries

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in READ_MODEL_TABLES)}")
