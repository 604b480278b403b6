"""The outbox relay: publishes a service's committed events to Kafka.

* In order: one relay per service is active at a time (a PostgreSQL advisory
  lock elects it; others wait as standbys), it reads the outbox in position
  order, and aiokafka keeps order per partition. Key = subject, so a stream
  always lands on one partition.
* At least once: an outbox row is deleted only after Kafka acknowledged it. A
  crash between the two publishes it again; consumers drop the duplicate by
  event id.
* No gaps: the outbox holds *unpublished rows*, not a cursor. A transaction
  that commits late just leaves its rows for the next pass.
* Broker down: the pass fails, the rows stay, and the relay retries with
  exponential backoff until the broker is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer
from tenacity import wait_exponential_jitter

from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import notify_channel
from libs.messaging.kafka import ensure_topics, list_topics, make_producer
from libs.observability import metrics

log = logging.getLogger(__name__)

AfterPublishHook = Callable[[list[int]], Awaitable[None]]


@dataclass
class OutboxRelay:
    pool: asyncpg.Pool
    schema: str
    bootstrap: str
    service: str = ""
    batch_size: int = 1000
    poll_interval_s: float = 0.5
    #: Test seam: runs after Kafka acknowledged a batch, before the rows are deleted.
    after_publish: AfterPublishHook | None = None
    _producer: AIOKafkaProducer | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        check_schema_name(self.schema)
        self.service = self.service or self.schema
        s = self.schema
        self._sql_pending = f"""
            SELECT o.position, o.topic, e.stream_id, e.envelope::text AS envelope
            FROM {s}.outbox o JOIN {s}.events e USING (position)
            ORDER BY o.position LIMIT $1"""
        self._sql_done = f"DELETE FROM {s}.outbox WHERE position = ANY($1::bigint[])"
        self._sql_lag = f"""
            SELECT count(*) AS events,
                   coalesce(extract(epoch FROM clock_timestamp() - min(enqueued_at)), 0) AS seconds
            FROM {s}.outbox"""

    # -- lifecycle -------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; only the elected relay publishes."""
        async with self.pool.acquire() as leader_conn:
            while not stop.is_set():
                if await leader_conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock_key):
                    break
                await _sleep_or_stop(stop, 1.0)  # another relay is active: stand by
            else:
                return
            await leader_conn.add_listener(notify_channel(self.schema), self._on_notify)
            try:
                await self._publish_until(stop)
            finally:
                await leader_conn.remove_listener(notify_channel(self.schema), self._on_notify)
                await leader_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock_key)
                await self.close()

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.stop()
            except Exception:  # the broker may be gone; nothing left to flush
                log.debug("producer stop failed", exc_info=True)

    @property
    def _lock_key(self) -> str:
        return f"binome.relay.{self.schema}"

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_until(self, stop: asyncio.Event) -> None:
        backoff = wait_exponential_jitter(multiplier=0.1, max=5.0)
        failures = 0
        while not stop.is_set():
            try:
                published = await self.publish_pending()
                failures = 0
            except Exception as exc:  # broker down, DB hiccup: keep the rows, retry
                failures += 1
                log.warning("relay %s: publish failed (%s), retry %d", self.schema, exc, failures)
                await self.close()
                await _sleep_or_stop(stop, backoff(_RetryState(failures)))
                continue
            if published < self.batch_size:
                self._wake.clear()
                await self._wait_for_work(stop)

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stopper, waker}, timeout=self.poll_interval_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            waker.cancel()

    # -- one pass ----------------------------------------------------------------

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; return how many were published."""
        rows = await self.pool.fetch(self._sql_pending, self.batch_size)
        if rows:
            topics = {r["topic"] for r in rows}
            producer = await self._ensure_producer(topics)
            sends = [
                await producer.send(r["topic"], value=r["envelope"].encode(), key=r["stream_id"].encode())
                for r in rows
            ]
            await asyncio.gather(*sends)  # every record acknowledged, or raise
            await self._check_topics_survived(topics)
            positions = [r["position"] for r in rows]
            if self.after_publish is not None:
                await self.after_publish(positions)
            await self.pool.execute(self._sql_done, positions)
            for topic in {r["topic"] for r in rows}:
                metrics.EVENTS_PUBLISHED.labels(self.service, topic).inc(sum(1 for r in rows if r["topic"] == topic))
        await self.record_lag()
        return len(rows)

    async def record_lag(self) -> None:
        lag = await self.pool.fetchrow(self._sql_lag)
        metrics.OUTBOX_LAG_EVENTS.labels(self.service).set(lag["events"])
        metrics.OUTBOX_LAG_SECONDS.labels(self.service).set(float(lag["seconds"]))

    async def _ensure_producer(self, topics: set[str]) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self.bootstrap)
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
        # Checked on every batch, not cached: a restarted in-memory broker has
        # lost its topics, and a producer with stale metadata would not notice.
        await ensure_topics(self.bootstrap, sorted(topics))
        return self._producer

    async def _check_topics_survived(self, topics: set[str]) -> None:
        """Refuse acknowledgements from a broker that lost the topic meanwhile.

        Tansu, the embedded memory-only broker, acknowledges records sent with
        stale metadata to a topic it no longer has after a restart, and drops
        them. If the topic is gone after the acks, keep the rows and retry.
        """
        existing = await list_topics(self.bootstrap)
        missing = topics - existing
        if missing:
            raise BrokerLostTopics(f"topics vanished during publish: {sorted(missing)}")


class BrokerLostTopics(RuntimeError):
    pass


@dataclass
class _RetryState:
    """The slice of tenacity's RetryCallState that its wait strategies read."""

    attempt_number: int


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
