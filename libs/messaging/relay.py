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
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer
from tenacity import RetryCallState, RetryError

from libs.events.envelope import OLD_STREAM_VERSION, STREAM_VERSION
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import local_relay, notify_channel
from libs.messaging.kafka import TopicSpec, ensure_topics, event_headers, make_producer, send_keyed
from libs.observability import metrics
from libs.retry import sleep_unless_stopped, until_stopped

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
    #: The outbox-lag gauges cost a query: refreshed at most this often.
    lag_interval_s: float = 1.0
    #: Test seam: runs after Kafka acknowledged a batch, before the rows are deleted.
    after_publish: AfterPublishHook | None = None
    #: Opens the connection that holds the relay's lock and ``LISTEN``, outside
    #: the pool. None: one of the pool's, reset before it goes back.
    connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None
    #: Partitions and replication factor of the topics it has to create.
    topic_spec: TopicSpec = field(default_factory=TopicSpec)
    _producer: AIOKafkaProducer | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    #: Topics known to exist since the current producer started.
    _ensured: set[str] = field(default_factory=set, init=False)
    _lag_recorded_at: float = field(default=float("-inf"), init=False)
    #: The elected relay's connection (it holds the lock): its queries run
    #: there, without a trip through the pool.
    _conn: asyncpg.Connection | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_schema_name(self.schema)
        self.service = self.service or self.schema
        s = self.schema
        # The oldest outbox rows first, then each one's event by primary key.
        # Written so that no statistics can change the plan: on a young table
        # that was never analysed, a plain join hashed the whole events table
        # on every pass, and a pass got slower with every event stored. The
        # LIMIT 1 (the position is unique) keeps PostgreSQL from flattening the
        # lookup back into such a join. An event stored before the stream
        # version's rename (libs/events/envelope.py) goes out in the new form.
        self._sql_pending = f"""
            SELECT o.position, o.topic, e.stream_id,
                   (CASE WHEN e.envelope ? '{OLD_STREAM_VERSION}'
                         THEN e.envelope - '{OLD_STREAM_VERSION}' || jsonb_build_object('{STREAM_VERSION}', e.version)
                         ELSE e.envelope END)::text AS envelope
            FROM (SELECT position, topic FROM {s}.outbox ORDER BY position LIMIT $1) o
            CROSS JOIN LATERAL (
                SELECT stream_id, version, envelope FROM {s}.events WHERE position = o.position LIMIT 1
            ) e
            ORDER BY o.position"""
        self._sql_done = f"DELETE FROM {s}.outbox WHERE position = ANY($1::bigint[])"
        self._sql_lag = f"""
            SELECT count(*) AS events,
                   coalesce(extract(epoch FROM clock_timestamp() - min(enqueued_at)), 0) AS seconds
            FROM {s}.outbox"""

    # -- lifecycle -------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; only the elected relay publishes."""
        async with self._session() as leader_conn:
            while not stop.is_set():
                if await leader_conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock_key):
                    break
                await sleep_unless_stopped(stop, 1.0)  # another relay is active: stand by
            else:
                return
            await leader_conn.add_listener(notify_channel(self.schema), self._on_notify)
            self._conn = leader_conn
            try:
                with local_relay(self.pool, self.schema, self._on_notify):  # appends in this process
                    await self._publish_until(stop)
            finally:
                self._conn = None
                await self.close()

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection for the lock and ``LISTEN``; both end with it.

        Its own (``connect``): closing it ends them. The pool's: reset before
        it goes back, so that pools which skip asyncpg's reset
        (``libs/database.py``) never hand out a connection holding the lock.
        """
        if self.connect is not None:
            conn = await self.connect()
            try:
                yield conn
            finally:
                await conn.close()
            return
        async with self.pool.acquire() as conn:
            try:
                yield conn
            finally:
                if not conn.is_closed():
                    await conn.reset()  # unlocks, UNLISTEN *, drops the callback

    async def close(self) -> None:
        # A new producer checks its topics again: the broker may have lost them.
        self._ensured.clear()
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
        # Broker down, database hiccup: keep the rows and try the pass again,
        # with backoff, until it publishes or the platform stops.
        retrying = until_stopped(
            stop, retry_if=self._may_retry, before_sleep=self._after_failure, multiplier=0.1, max=5.0
        )
        while not stop.is_set():
            # Cleared before the pass, not after: a notification that arrives
            # while this pass runs must start the next one, not wait for the poll.
            self._wake.clear()
            try:
                published = await retrying(self.publish_pending)
            except RetryError:
                return  # stopped while failing
            if published < self.batch_size:
                await self._wait_for_work(stop)

    def _may_retry(self, exc: BaseException) -> bool:
        # The lock went with the connection: stop being the relay (raised).
        return isinstance(exc, Exception) and not (self._conn is not None and self._conn.is_closed())

    async def _after_failure(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        metrics.RELAY_PUBLISH_FAILURES.labels(self.service).inc()
        log.warning("relay %s: publish failed (%s), retry %d", self.schema, exc, state.attempt_number)
        # The lag keeps growing while the broker is down: let the gauges (and
        # the relay-stuck alert) see it.
        with contextlib.suppress(Exception):
            await self._record_lag_now_and_then()
        await self.close()

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
        db = self._conn or self.pool
        rows = await db.fetch(self._sql_pending, self.batch_size)
        if rows:
            topics = {r["topic"] for r in rows}
            producer = await self._ensure_producer(topics)
            messages = (
                (r["topic"], r["stream_id"].encode(), r["envelope"].encode(), event_headers(r["position"])) for r in rows
            )
            acks = await send_keyed(producer, messages)
            # Every record acknowledged, or raise. The topic check goes out
            # beside the records, to the same broker: a broker that lost the
            # topics before the records came says so in its answer.
            await asyncio.gather(*acks, self._check_topics_survived(producer, topics))
            positions = [r["position"] for r in rows]
            if self.after_publish is not None:
                await self.after_publish(positions)
            await db.execute(self._sql_done, positions)
            for topic, count in Counter(r["topic"] for r in rows).items():
                metrics.EVENTS_PUBLISHED.labels(self.service, topic).inc(count)
        await self._record_lag_now_and_then()
        return len(rows)

    async def _record_lag_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._lag_recorded_at >= self.lag_interval_s:
            self._lag_recorded_at = now
            await self.record_lag()

    async def record_lag(self) -> None:
        lag = await (self._conn or self.pool).fetchrow(self._sql_lag)
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
        # Created once per producer (an admin client costs several round
        # trips); a broker that loses them later is caught after the acks.
        if new := topics - self._ensured:
            await ensure_topics(self.bootstrap, sorted(new), self.topic_spec)
            self._ensured |= new
        return self._producer

    async def _check_topics_survived(self, producer: AIOKafkaProducer, topics: set[str]) -> None:
        """Refuse acknowledgements from a broker that lost the topic.

        Tansu, the embedded memory-only broker, acknowledges records sent with
        stale metadata to a topic it no longer has after a restart, and drops
        them. If the topic is gone when the acks come, keep the rows and retry
        (``close`` forgets the ensured topics, so they are created again). One
        metadata request on the producer's own connection, no admin client.
        """
        cluster = await producer.client.fetch_all_metadata()
        missing = topics - cluster.topics()
        if missing:
            raise BrokerLostTopics(f"topics vanished during publish: {sorted(missing)}")


class BrokerLostTopics(RuntimeError):
    pass
