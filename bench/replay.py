#!/usr/bin/env python
"""Binome replay benchmark: rebuild the insights read model from the log.

Run from the repository root::

    .venv/bin/python bench/replay.py                 # 100,000 events (CI-sized)
    .venv/bin/python bench/replay.py --full          # 1,000,000 events
    .venv/bin/python bench/replay.py --events 5000 --baseline-timeout 60

It writes N synthetic but valid events into four source event stores
(enrollment, matching, sessions, evaluation): a template cohort built with
the event models of libs/events (a programme, its waves, pairs with their
enrolments, proposals, sessions, check-ins, surveys and budget overruns),
copied with fresh ids and inserted with COPY. Then it rebuilds insights'
read model twice, in this process, on the same servers:

* **Binome**: ``rebuild`` then ``Replayer`` (libs/messaging/replayer.py):
  the stores read directly, batches applied through ``replay_batch``, the
  streams split among ``--workers`` processes (libs/messaging/
  replay_workers.py; default: the core count);
* **baseline**: the path ``binome replay`` took before: ``rebuild``, every
  source's whole log queued again in its outbox (``republish_all``), the
  outbox relays publishing it to the broker and a ``ConsumerRunner`` applying
  it through insights' projection as it was (``TodaysInsightsProjection``:
  a round trip per statement, the gauges per batch). It stops at
  ``--baseline-timeout``; its rate is then what it applied in that time. On
  the platform it also made every other consumer re-read and skip the four
  logs, which this process does not count.

Both are timed from the rebuild until the read model has applied every
event; the rebuilt tables are compared (row counts and an md5 of their
contents). Beside the seconds, the CPU time per event of this process and of
the database's PostgreSQL backends (from /proc), which the shared machine's
load changes much less than the wall time. Servers: embedded
PostgreSQL in a temporary directory unless ``BINOME_DATABASE_URL`` is set;
embedded Tansu unless ``BINOME_KAFKA_BOOTSTRAP`` is set. Schemas get a unique
prefix and are dropped at the end. Figures go to ``bench/out/replay.json``
and the chart to ``bench/out/replay.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import resource
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/replay.py` from anywhere

import asyncpg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.pipeline import describe_environment, start_stack  # noqa: E402
from libs.database import create_pool  # noqa: E402
from libs.events.serialization import dumps  # noqa: E402
from libs.eventstore.migrations import migrate  # noqa: E402
from libs.eventstore.store import EventStore  # noqa: E402
from libs.messaging.consumer import ConsumerRunner, rebuild  # noqa: E402
from libs.messaging.relay import OutboxRelay  # noqa: E402
from libs.messaging.replay_workers import run_partitioned  # noqa: E402
from libs.messaging.replayer import BATCH_SIZE, Replayer, Source  # noqa: E402
from libs.runtime.heap import freeze_startup_heap  # noqa: E402
from libs.runtime.replay_progress import replay_progress  # noqa: E402
from services.insights import SERVICE as INSIGHTS  # noqa: E402
from libs.events import DomainEvent, Envelope  # noqa: E402
from services.insights.health import gauges  # noqa: E402
from services.insights.consumers.insights import READ_MODEL_TABLES, InsightsProjection  # noqa: E402
from services.insights.facts import activity  # noqa: E402
from tests.support.insights import NOW, SOURCES, T0, Scenario  # noqa: E402

OUT = ROOT / "bench" / "out" / "replay.json"
AIM_SECONDS_PER_MILLION = 60.0
console = Console(width=140)  # the report's table unbroken in a log too
log = logging.getLogger("bench.replay")

UUID_OR_ORG = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|org-[0-9a-f]{8}")


# --------------------------------------------------------------------------- the events


def cohort(pairs: int = 10) -> Scenario:
    """One organisation's programme: two waves and ``pairs`` pairs living
    their months (about 23 events a pair), through the event models."""
    sc = Scenario()
    sc.programme()
    sc.k_anonymity(3)
    sc.wave("FR", "Europe")
    sc.wave("BR", "Americas")
    for n in range(pairs):
        country = ("FR", "BR")[n % 2]
        pair = sc.pair(sc.enrol(country, "mentee"), sc.enrol(country, "mentor"), formed=T0 + timedelta(days=n % 7))
        for week in range(4):
            sc.held(pair, T0 + timedelta(days=7 * week + 3, hours=n % 5), minutes=30 + 5 * week)
        sc.check_in(pair, T0 + timedelta(days=10), mood=3 + n % 3)
        sc.check_in(pair, T0 + timedelta(days=24), mood=1 + n % 5)
        sc.cancelled(pair, T0 + timedelta(days=30), late=n % 3 == 0)
        sc.survey(pair, "digital_maturity", "pre", due=T0 + timedelta(days=7), scale=[2, 3], answered=T0 + timedelta(days=5))
        sc.survey(pair, "session_feedback", "session", due=T0 + timedelta(days=12), scale=[4, 5],
                  answered=T0 + timedelta(days=11))
        if n % 5 == 0:
            sc.over_budget(pair, date(2026, 3, 1), T0 + timedelta(days=20))
        if n % 7 == 6:
            sc.dissolve(pair, T0 + timedelta(days=40))
    return sc


@dataclass
class Template:
    """A cohort's events as stored rows, split around every id, so that a copy
    with fresh ids is a string join (no model work per copy)."""

    #: context, stream split around its ids, those ids, the envelope likewise, version, type
    rows: list[tuple[str, list[str], list[str], list[str], list[str], int, str]]
    tokens: list[str]  # every id (and the organisation) in the cohort

    @classmethod
    def of(cls, sc: Scenario) -> Template:
        versions: dict[str, int] = {}
        rows, tokens = [], set()
        for stream, envelope in sc.events:
            versions[stream] = versions.get(stream, 0) + 1
            raw = dumps(envelope.with_sequence(versions[stream])).decode()
            tokens.update(UUID_OR_ORG.findall(raw))
            tokens.update(UUID_OR_ORG.findall(stream))
            rows.append((envelope.context, UUID_OR_ORG.split(stream), UUID_OR_ORG.findall(stream),
                         UUID_OR_ORG.split(raw), UUID_OR_ORG.findall(raw), versions[stream], envelope.type))
        return cls(rows, sorted(tokens))

    def __len__(self) -> int:
        return len(self.rows)

    def copy(self) -> dict[str, list[tuple]]:
        """The cohort with fresh ids: rows per context, ready for COPY."""
        fresh = {t: (f"org-{uuid.uuid4().hex[:8]}" if t.startswith("org-") else str(uuid.uuid4())) for t in self.tokens}
        out: dict[str, list[tuple]] = {c: [] for c in SOURCES}
        for context, s_parts, s_ids, e_parts, e_ids, version, type_ in self.rows:
            stream = _join(s_parts, s_ids, fresh)
            raw = _join(e_parts, e_ids, fresh)
            event_id = raw[raw.index('"id":"') + 6:][:36]
            out[context].append((uuid.UUID(event_id), stream, version, type_, raw))
        return out


def _join(parts: list[str], ids: list[str], fresh: dict[str, str]) -> str:
    pieces = [parts[0]]
    for token, part in zip(ids, parts[1:], strict=True):
        pieces += [fresh[token], part]
    return "".join(pieces)


async def generate(pool: asyncpg.Pool, schemas: dict[str, str], events: int) -> int:
    """Insert at least ``events`` events (whole cohorts); return how many."""
    template = Template.of(cohort())
    copies = max(1, -(-events // len(template)))  # whole cohorts, at least ``events``
    written = 0
    progress = replay_progress(console)
    with progress:
        task = progress.add_task("generating", total=copies * len(template))
        async with pool.acquire() as conn:
            for _ in range(copies):
                for context, rows in template.copy().items():
                    await conn.copy_records_to_table(
                        "events", schema_name=schemas[context], records=rows,
                        columns=["event_id", "stream_id", "version", "type", "envelope"],
                    )
                    written += len(rows)
                progress.advance(task, len(template))
    for schema in schemas.values():
        await pool.execute(f"ANALYZE {schema}.events")
    return written


# --------------------------------------------------------------------------- the two paths


@dataclass
class Run:
    seconds: float
    applied: int
    first_applied_s: float | None = None  # when the read model got its first event
    cpu: Cpu | None = None

    @property
    def rate(self) -> float:
        return self.applied / self.seconds if self.seconds else 0.0


@dataclass
class Cpu:
    """CPU seconds spent during a run: this process (every thread), and the
    PostgreSQL backends serving this database. Unlike wall time, they hardly
    depend on what else the shared machine runs."""

    python_s: float
    postgres_s: float


class CpuMeter:
    """The CPU time of this process and its replay workers (``resource``), and
    of this database's backends (/proc), polled while the run lasts so that a
    worker's backends, gone when it ends, are counted too."""

    def __init__(self, pool: asyncpg.Pool, poll_s: float = 0.5) -> None:
        self.pool = pool
        self.poll_s = poll_s
        self._backends: dict[int, tuple[float, float]] = {}  # pid -> (first seen, last seen)
        self._python = 0.0
        self._polling: asyncio.Task | None = None

    async def start(self) -> None:
        self._python = _python_cpu_s()
        await self._poll()
        self._backends = {pid: (last, last) for pid, (_, last) in self._backends.items()}  # what came before
        self._polling = asyncio.create_task(self._keep_polling())

    async def stop(self) -> Cpu:
        assert self._polling is not None
        self._polling.cancel()
        await asyncio.gather(self._polling, return_exceptions=True)
        await self._poll()
        postgres = sum(last - first for first, last in self._backends.values())
        return Cpu(_python_cpu_s() - self._python, postgres)

    async def _keep_polling(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            await self._poll()

    async def _poll(self) -> None:
        pids = [r[0] for r in await self.pool.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'")]
        for pid in pids:
            if (now := _proc_cpu_s(pid)) is not None:
                first, _ = self._backends.get(pid, (0.0, 0.0))
                self._backends[pid] = (first, now)


def _python_cpu_s() -> float:
    """This process, and its children once ended (the replay workers; the
    embedded servers run until the end)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process (None if it is gone or not readable here)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def new_path(pool: asyncpg.Pool, database_url: str, insights: str, schemas: dict[str, str], batch_size: int,
                   workers: int) -> Run:
    projection = InsightsProjection(insights, clock=lambda: NOW)
    sources = [Source(c, EventStore(pool, schemas[c])) for c in SOURCES]
    with replay_progress(console) as progress:
        total = sum([await pool.fetchval(f"SELECT count(*) FROM {s}.events") for s in schemas.values()])
        task = progress.add_task("replay (Binome)", total=total)
        replayer = Replayer(pool, insights, projection, sources, batch_size=batch_size,
                            on_advance=lambda n: progress.advance(task, n))
        recipe = functools.partial(bench_replayer, database_url, insights, schemas, batch_size)
        meter = CpuMeter(pool)
        await meter.start()
        started = time.perf_counter()
        await rebuild(pool, insights, projection)
        done = await run_partitioned(replayer, recipe, workers)
        seconds = time.perf_counter() - started
        cpu = await meter.stop()
    return Run(seconds, done.applied, seconds - done.seconds + (done.first_applied_s or 0.0), cpu)


@contextlib.asynccontextmanager
async def bench_replayer(database_url: str, insights: str, schemas: dict[str, str],
                         batch_size: int) -> AsyncIterator[Replayer]:
    """What ``new_path`` replays, built in a replay worker's process."""
    pool = await create_pool(database_url, min_size=2, max_size=4)
    try:
        projection = InsightsProjection(insights, clock=lambda: NOW)
        sources = [Source(c, EventStore(pool, schemas[c])) for c in SOURCES]
        yield Replayer(pool, insights, projection, sources, batch_size=batch_size)
    finally:
        await pool.close()


class TodaysInsightsProjection(InsightsProjection):
    """insights' projection as ``binome replay`` drove it before: a round trip
    per statement, a pair's activity recomputed after each of its events, the
    business gauges refreshed after each consumer batch."""

    async def handle_batch(self, conn: asyncpg.Connection, items: list[tuple[Envelope, DomainEvent]]) -> None:
        countries: set[str] = set()
        for envelope, event in items:
            handler = self.handler_for(event)
            touched = [] if handler is None else await handler(conn, envelope, event)
            if touched:
                await activity.refresh(conn, self.schema, touched)
                if envelope.country:
                    countries.add(envelope.country.upper())
        for country in sorted(countries):
            await gauges.refresh(conn, self.schema, country, self.clock())


async def old_path(pool: asyncpg.Pool, bootstrap: str, insights: str, schemas: dict[str, str], total: int,
                   timeout: float) -> Run:
    """``rebuild`` + ``republish_all`` of every source + relays + a consumer, as before."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    projection = TodaysInsightsProjection(insights, clock=lambda: NOW, name="insights-baseline")
    runner = ConsumerRunner(pool, insights, projection, bootstrap, service="insights", topic_prefix=prefix,
                            session_timeout_ms=1000)
    stop = asyncio.Event()
    relays = [OutboxRelay(pool, s, bootstrap, poll_interval_s=0.05) for s in schemas.values()]
    tasks = [asyncio.create_task(runner.run(stop))]
    meter = CpuMeter(pool)
    try:
        await runner.wait_assigned(60)
        with replay_progress(console) as progress:
            task = progress.add_task("replay (before: relay + broker + consumer)", total=total)
            await meter.start()
            started = time.perf_counter()
            await rebuild(pool, insights, projection)
            for schema in schemas.values():
                await EventStore(pool, schema, topic_prefix=prefix).republish_all()
            tasks += [asyncio.create_task(r.run(stop)) for r in relays]
            applied, first = 0, None
            count = f"SELECT count(*) FROM {insights}.applied_events WHERE consumer = $1"
            while applied < total and time.perf_counter() - started < timeout:
                await asyncio.sleep(0.5)
                now_applied = await pool.fetchval(count, projection.name)
                if now_applied and first is None:
                    first = time.perf_counter() - started
                progress.advance(task, now_applied - applied)
                applied = now_applied
            seconds = time.perf_counter() - started
            cpu = await meter.stop()  # the broker's own CPU (another process) is not counted
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for schema in schemas.values():  # what the baseline left queued
            await pool.execute(f"DELETE FROM {schema}.outbox")
    return Run(seconds, applied, first, cpu)


async def table_counts(pool: asyncpg.Pool, insights: str) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {insights}.{t}") for t in READ_MODEL_TABLES}


async def table_checksums(pool: asyncpg.Pool, insights: str) -> dict[str, str]:
    """An md5 of each table's rows (every column), independent of their physical order."""
    return {
        t: await pool.fetchval(f"SELECT md5(coalesce(string_agg(r, '' ORDER BY r), ''))"
                               f" FROM (SELECT md5(t::text) AS r FROM {insights}.{t} t) AS rows")
        for t in READ_MODEL_TABLES
    }


# --------------------------------------------------------------------------- report


def write_chart(report: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure as Chart

    chart = Chart(figsize=(9, 4.5), dpi=100, layout="constrained")
    axes = chart.add_subplot(1, 1, 1)
    labels = ["Binome (event stores)", "before (relay + broker + consumer)"]
    rates = [report["binome"]["events_per_s"], (report.get("baseline") or {}).get("events_per_s") or 0]
    axes.bar(labels, rates, color=["C0", "C7"])
    aim = 1_000_000 / AIM_SECONDS_PER_MILLION
    axes.axhline(aim, color="C3", linestyle="--", linewidth=1, label=f"aim: 1 M events in {AIM_SECONDS_PER_MILLION:.0f} s")
    axes.set_ylabel("events/s into the insights read model")
    axes.set_title(f"binome replay insights, {report['events']:,} events")
    for x, rate in enumerate(rates):
        axes.annotate(f"{rate:,.0f}/s", (x, rate), ha="center", va="bottom")
    axes.legend()
    path = out.with_suffix(".png")
    chart.savefig(path, format="png")
    return path


def print_report(report: dict) -> None:
    table = Table(title=f"Rebuild of insights from {report['events']:,} events (same process, same servers)")
    for column in ("path", "seconds", "events applied", "events/s", "first applied after",
                   "Python CPU µs/event", "PostgreSQL CPU µs/event"):
        table.add_column(column, justify="right" if column != "path" else "left")
    rows = [(f"Binome: stores -> replay_batch ({report['workers']} processes)", report["binome"])]
    if report.get("baseline"):
        rows.append(("before: outbox -> relay -> broker -> consumer", report["baseline"]))
    for label, r in rows:
        first = r.get("first_applied_s")
        table.add_row(label, f"{r['seconds']:,.1f}", f"{r['applied']:,}", f"{r['events_per_s']:,.0f}",
                      "-" if first is None else f"{first:,.1f} s", _us(r.get("python_cpu_us_per_event")),
                      _us(r.get("postgres_cpu_us_per_event")))
    console.print(table)
    console.print(f"load average at the start {report['environment']['load_average_at_start']}, "
                  f"after the Binome run {report['binome']['load_average_after']:.1f} "
                  f"({report['environment']['cpu_count']} cores)")
    if report.get("same_read_model"):
        console.print("both paths built the same read model (row counts and contents checksums)")
    if report.get("ratio"):
        console.print(f"ratio Binome / before: {report['ratio']:,.1f}x events/s")
    per_million = report["binome"]["seconds_per_million"]
    met = per_million < AIM_SECONDS_PER_MILLION
    console.print(f"aim 1 M events < {AIM_SECONDS_PER_MILLION:.0f} s: {per_million:,.1f} s per million -> "
                  + ("[green]MET[/green]" if met else "[red]NOT MET[/red]"))


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


# --------------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> dict:
    stack = await asyncio.to_thread(start_stack)
    try:
        pool = await create_pool(stack.database_url, min_size=2, max_size=6)
        prefix = f"rb{uuid.uuid4().hex[:6]}_"
        schemas = {c: f"{prefix}{c}" for c in SOURCES}
        insights = f"{prefix}insights"
        try:
            async with pool.acquire() as conn:
                for schema in schemas.values():
                    await migrate(conn, schema)
                await migrate(conn, insights, INSIGHTS.migrations)
            environment = await describe_environment(pool, stack)
            total = await generate(pool, schemas, args.events)
            freeze_startup_heap()  # as binome up and binome replay do: both paths gain
            with _profiled(args.profile):
                binome = await new_path(pool, stack.database_url, insights, schemas, args.batch_size, args.workers)
            assert binome.applied == total, (binome.applied, total)
            counts = await table_counts(pool, insights)
            checksums = await table_checksums(pool, insights)
            report = {"environment": environment, "events": total, "batch_size": args.batch_size,
                      "workers": args.workers,
                      "binome": _figures(binome), "tables": counts, "checksums": checksums}
            if args.baseline:
                baseline = await old_path(pool, stack.bootstrap, insights, schemas, total, args.baseline_timeout)
                report["baseline"] = {**_figures(baseline), "complete": baseline.applied == total}
                if baseline.applied == total:  # the same read model both ways, row for row
                    assert await table_counts(pool, insights) == counts
                    assert await table_checksums(pool, insights) == checksums
                    report["same_read_model"] = True
                report["ratio"] = binome.rate / baseline.rate if baseline.rate else None
        finally:
            for schema in [*schemas.values(), insights]:
                await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await pool.close()
    finally:
        stack.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    console.print(f"written to {out}; chart: {write_chart(report, out)}")
    return report


@contextlib.contextmanager
def _profiled(path: str | None):
    """cProfile of this process (the replay's first part) into ``path``, if given."""
    if path is None:
        yield
        return
    import cProfile

    profile = cProfile.Profile(time.process_time)  # CPU time: the shared machine's waits left out
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)
        console.print(f"profile of this process written to {path}")


def _figures(run: Run) -> dict:
    per_event = (lambda s: s / run.applied * 1e6 if run.applied else None)
    return {"seconds": run.seconds, "applied": run.applied, "events_per_s": run.rate,
            "seconds_per_million": run.seconds / run.applied * 1_000_000 if run.applied else None,
            "first_applied_s": run.first_applied_s,
            "python_cpu_us_per_event": per_event(run.cpu.python_s) if run.cpu else None,
            "postgres_cpu_us_per_event": per_event(run.cpu.postgres_s) if run.cpu else None,
            "load_average_after": os.getloadavg()[0]}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to generate (default 100,000)")
    parser.add_argument("--full", action="store_true", help="1,000,000 events")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="events per replay transaction")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes the Binome path splits the streams among (default: the core count)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the path of before")
    parser.add_argument("--baseline-timeout", type=float, default=180.0,
                        help="seconds the path of before may run; its rate is what it applied by then")
    parser.add_argument("--profile", metavar="PATH", help="cProfile this process's part of the Binome run into PATH")
    parser.add_argument("--out", default=str(OUT), help="where the JSON goes (the chart beside it)")
    args = parser.parse_args(argv)
    if args.full:
        args.events = 1_000_000
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parse()))
