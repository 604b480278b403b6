"""Start-up cost against store size: what an empty broker is given, and how long it takes.

The embedded broker keeps nothing across restarts. Before, every start queued
the whole log for publishing again (``EventStore.republish_all``): start-up
time and broker memory grew with every event ever stored, and every consumer
re-read everything. Now each source queues only the events after the lowest
watermark of its consumers (``Platform.carry_log_to_empty_broker``,
libs/messaging/watermarks.py).

For each store size (every consumer caught up, as after a clean stop) it
measures, on real PostgreSQL and a real broker, side by side:

* before: ``republish_all``, then the relay publishing the whole outbox;
* now, first start after the upgrade: no watermark stored yet, so each
  consumer's watermark is walked from the beginning of the log once;
* now, every later start: watermarks stored, only what follows is read.

    .venv/bin/python bench/restart.py            # 10k and 100k events (about 2 min here)
    .venv/bin/python bench/restart.py --full     # 10k, 100k and 1M events
    .venv/bin/python bench/restart.py --sizes 5000 --no-baseline
    .venv/bin/python bench/restart.py --full --platform   # and `binome up` to ready, store filled

It prints a table, writes bench/out/restart.json and draws bench/out/restart.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import sys

import asyncpg
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support, run as a script

from libs.database import create_pool
from libs.embedded import postgres as embedded_postgres
from libs.embedded.broker import EmbeddedBroker
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.messaging.relay import OutboxRelay
from libs.messaging.watermarks import Subscription, Watermarks

OUT = Path(__file__).parent / "out"
#: Consumers of the source log, as enrollment has (matching, sessions, evaluation, insights).
CONSUMERS = ("matching-candidate-pool", "sessions-people", "evaluation-intake", "insights")


@dataclass
class Figure:
    events: int
    before_queued: int | None = None
    before_seconds: float | None = None
    first_queued: int = 0
    first_seconds: float = 0.0
    later_queued: int = 0
    later_seconds: float = 0.0


async def fill(pool: asyncpg.Pool, schema: str, n: int) -> None:
    """``n`` events on 1,000 streams, published long ago, applied by every consumer."""
    await fill_events(pool, schema, n)
    for consumer in CONSUMERS:
        await pool.execute(
            f"INSERT INTO {schema}.applied_events (consumer, event_id) SELECT $1, event_id FROM {schema}.events",
            consumer,
        )
    await pool.execute(f"ANALYZE {schema}.events")
    await pool.execute(f"ANALYZE {schema}.applied_events")


async def drain(pool: asyncpg.Pool, schema: str, bootstrap: str) -> None:
    """Publish the outbox until it is empty, as the platform's relay would."""
    relay = OutboxRelay(pool, schema, bootstrap, batch_size=2000)
    try:
        while await relay.publish_pending():
            pass
    finally:
        await relay.close()


async def measure(pool: asyncpg.Pool, bootstrap: str, n: int, baseline: bool, progress: Progress) -> Figure:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        await migrate(conn, schema)
    try:
        task = progress.add_task(f"{n:,} events: filling the store", total=None)
        await fill(pool, schema, n)
        store = EventStore(pool, schema, topic_prefix=f"bench{uuid.uuid4().hex[:6]}.")
        subscriptions = [Subscription("bench", schema, c, schema) for c in CONSUMERS]
        figure = Figure(n)
        if baseline:
            progress.update(task, description=f"{n:,} events: before (republish everything)")
            started = time.perf_counter()
            figure.before_queued = await store.republish_all()
            await drain(pool, schema, bootstrap)
            figure.before_seconds = time.perf_counter() - started
        for label in ("first", "later"):
            progress.update(task, description=f"{n:,} events: now, {label} start")
            started = time.perf_counter()
            lowest = await Watermarks(pool).lowest(subscriptions, schema)
            queued = await store.republish_after(lowest)
            await drain(pool, schema, bootstrap)
            setattr(figure, f"{label}_queued", queued)
            setattr(figure, f"{label}_seconds", time.perf_counter() - started)
        progress.remove_task(task)
        return figure
    finally:
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")


def draw(figures: list[Figure], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [f.events for f in figures]
    fig, (times, counts) = plt.subplots(1, 2, figsize=(11, 4.2))
    if all(f.before_seconds is not None for f in figures):
        times.plot(sizes, [f.before_seconds for f in figures], "o-", label="before: republish all")
        counts.plot(sizes, [f.before_queued for f in figures], "o-", label="before: republish all")
    times.plot(sizes, [f.first_seconds for f in figures], "s-", label="now: first start (walk from scratch)")
    times.plot(sizes, [f.later_seconds for f in figures], "^-", label="now: later starts")
    counts.plot(sizes, [max(f.first_queued, 0.8) for f in figures], "s-", label="now (0 drawn at the axis)")
    times.set(xscale="log", yscale="log", xlabel="events stored", ylabel="seconds to catch an empty broker up",
              title="Start-up cost")
    counts.set(xscale="log", yscale="log", xlabel="events stored", ylabel="events republished",
               title="Events republished")
    times.axhline(10, ls="--", c="grey", lw=0.8)
    times.annotate("aim: ready in < 10 s", (sizes[0], 10), fontsize=8, va="bottom")
    for axis in (times, counts):
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def run(sizes: list[int], baseline: bool) -> list[Figure]:
    database_url = os.environ.get("BINOME_DATABASE_URL")
    bootstrap = os.environ.get("BINOME_KAFKA_BOOTSTRAP")
    with contextlib.ExitStack() as stack:
        if not database_url:
            database_url = embedded_postgres.start(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        if not bootstrap:
            broker = EmbeddedBroker().start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        pool = await create_pool(database_url, min_size=2, max_size=8)
        try:
            with Progress() as progress:
                return [await measure(pool, bootstrap, n, baseline, progress) for n in sizes]
        finally:
            await pool.close()


def consumers_of(platform, source: str) -> list[tuple[str, str]]:
    """(service, consumer) pairs reading ``source``, as the running platform reports them."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{platform.base_url}/metrics", timeout=5).text
    return sorted(
        {
            (sample.labels["service"], sample.labels["consumer"])
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "binome_consumer_backlog_events" and sample.labels.get("source") == source
        }
    )


def platform_start_times(sizes: list[int]) -> list[dict]:
    """``binome up`` from launch to /readyz 200, with ``n`` enrollment events
    stored and applied by every consumer: the first start after the upgrade
    (watermarks walked from scratch) and a later one."""
    from tests.support.platform_process import PlatformProcess, eventually

    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as directory:
            # The store is filled while the platform runs, its backlog monitor
            # idle (it ran once, at start): the watermarks stay where they were,
            # as after an upgrade, until the next start walks them.
            platform = PlatformProcess.create(Path(directory), env={"BINOME_BACKLOG_INTERVAL_S": "3600"})
            platform.launch()
            # Every consumer of enrollment, once the gauges stopped growing (the
            # first refresh may be scraped half-way).
            readers: list = []
            while not readers or readers != consumers_of(platform, "enrollment"):
                readers = eventually(lambda: consumers_of(platform, "enrollment"), what="consumers of enrollment")
                time.sleep(1.0)

            async def fill_platform() -> None:
                pool = await create_pool(platform.database_url, min_size=1, max_size=2)
                try:
                    await fill_events(pool, "enrollment", n)
                    for service, consumer in readers:
                        await pool.execute(
                            f"""INSERT INTO {service}.applied_events (consumer, event_id)
                                SELECT $1, event_id FROM enrollment.events ON CONFLICT DO NOTHING""",
                            consumer,
                        )
                    await pool.execute("ANALYZE")
                finally:
                    await pool.close()

            asyncio.run(fill_platform())
            platform.stop()
            row = {"events": n}
            for label in ("first", "later"):
                started = time.perf_counter()
                platform.launch()
                row[f"{label}_seconds"] = time.perf_counter() - started
                row[f"{label}_republished"] = platform.metric("binome_events_republished_total") or 0
                platform.stop()
            results.append(row)
    return results


async def fill_events(pool: asyncpg.Pool, schema: str, n: int) -> None:
    """``n`` synthetic events on 1,000 streams of ``schema``'s store, none in
    its outbox (published long ago). Nothing decodes them: what is measured
    is what gets republished, not how it applies."""
    await pool.execute(
        f"""INSERT INTO {schema}.events (event_id, stream_id, version, type, envelope)
            SELECT gen_random_uuid(), 'bench-' || (i % 1000), i / 1000 + 1, 'binome.{schema}.BenchFiller.v1',
                   '{{}}'::jsonb
            FROM generate_series(0, $1 - 1) AS i""",
        n,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also 1,000,000 events")
    parser.add_argument("--sizes", help="comma-separated store sizes (overrides the defaults)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the republish-everything baseline")
    parser.add_argument("--out", type=Path, default=OUT, help="directory for restart.json and restart.png")
    parser.add_argument("--platform", action="store_true", help="also time `binome up` to /readyz with the store filled")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [10_000, 100_000] + ([1_000_000] if args.full else [])
    if args.platform:
        table = Table(title="`binome up` from launch to /readyz 200, every consumer caught up")
        for column in ("enrollment events", "first start after upgrade", "later starts"):
            table.add_column(column, justify="right")
        for row in platform_start_times(sizes):
            table.add_row(
                f"{row['events']:,}",
                f"{row['first_seconds']:.1f} s, {row['first_republished']:,.0f} republished",
                f"{row['later_seconds']:.1f} s, {row['later_republished']:,.0f} republished",
            )
        Console().print(table)
    figures = asyncio.run(run(sizes, not args.no_baseline))

    table = Table(title="Catching an empty broker up, every consumer caught up (seconds / events republished)")
    for column in ("events stored", "before: republish all", "now: first start", "now: later starts", "ratio"):
        table.add_column(column, justify="right")
    for f in figures:
        before = "-" if f.before_seconds is None else f"{f.before_seconds:.2f} s / {f.before_queued:,}"
        ratio = "-" if f.before_seconds is None else f"{f.before_seconds / max(f.later_seconds, 1e-6):,.0f}x"
        table.add_row(
            f"{f.events:,}", before, f"{f.first_seconds:.2f} s / {f.first_queued:,}",
            f"{f.later_seconds:.3f} s / {f.later_queued:,}", ratio,
        )
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "restart.json").write_text(json.dumps([asdict(f) for f in figures], indent=2))
    draw(figures, args.out / "restart.png")
    print(f"figures: {args.out / 'restart.json'}, picture: {args.out / 'restart.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
