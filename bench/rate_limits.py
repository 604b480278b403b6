#!/usr/bin/env python
"""What one rate-limit hit costs, by where the counters live.

Run from the repository root::

    .venv/bin/python bench/rate_limits.py              # 200,000 hits per way
    .venv/bin/python bench/rate_limits.py --hits 5000

``binome up --workers N`` must give a client one budget whatever worker
answers (libs/api/limits.py). Each way counts ``--hits`` hits over 1,000
clients, in this process, on the same machine:

* **one process** (``LocalWindow``): the counters in a dict, as a single
  ``binome up`` process keeps them (the baseline);
* **shared file** (``HostWindow``): the counters in a file every worker
  maps, under its lock, what ``--workers N`` uses; once alone and once with
  two processes hitting the same table at the same time (the lock contended);
* **PostgreSQL row** (the alternative the issue named): one upsert per hit on
  an UNLOGGED table through an asyncpg pool, as a worker would do it.

Printed: microseconds per hit (wall, and the CPU of this process: what a
request pays in Python) and each way's ratio to the baseline. PostgreSQL:
``BINOME_DATABASE_URL``, else the embedded server in a temporary directory.
Figures go to ``bench/out/rate_limits.json``, the chart beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from limits import parse as parse_rate  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.output import blank_chart, database, publish  # noqa: E402
from libs.api.limits import HostWindow, LocalWindow  # noqa: E402

OUT = ROOT / "bench" / "out" / "rate_limits.json"
CLIENTS = 1000
RATE = parse_rate("1000000/hour")  # never refused: every hit does the full work
console = Console(width=None if sys.stdout.isatty() else 120)  # piped: no wrapping at 80


def _keys(hits: int) -> list[str]:
    return [f"org-{i % CLIENTS}:client" for i in range(hits)]


def _timed(hit, keys: list[str]) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    for key in keys:
        hit(key)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"hits": len(keys), "us_per_hit": wall / len(keys) * 1e6, "cpu_us_per_hit": cpu / len(keys) * 1e6}


def _contender(path: str, hits: int, ready, go, results) -> None:
    window = HostWindow(RATE, Path(path))
    keys = _keys(hits)
    ready.set()
    go.wait()
    results.put(_timed(window.hit, keys))


def shared_by_two(path: Path, hits: int) -> dict:
    """Two processes hitting one table at once; per hit, as each saw it."""
    context = multiprocessing.get_context("spawn")
    results, go = context.Queue(), context.Event()
    readies = [context.Event() for _ in range(2)]
    processes = [context.Process(target=_contender, args=(str(path), hits, r, go, results)) for r in readies]
    for process in processes:
        process.start()
    for ready in readies:
        ready.wait(60)
    go.set()
    each = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(30)
    return {
        "hits": sum(e["hits"] for e in each),
        "us_per_hit": sum(e["us_per_hit"] for e in each) / 2,
        "cpu_us_per_hit": sum(e["cpu_us_per_hit"] for e in each) / 2,
    }


UPSERT = """
INSERT INTO {table} (key, time_window, hits) VALUES ($1, $2, 1)
ON CONFLICT (key, time_window) DO UPDATE SET hits = {table}.hits + 1
RETURNING hits
"""


async def postgres_rows(hits: int) -> dict:
    from libs.database import create_pool

    async with database("binome-bench-limits-") as infrastructure:
        pool = await create_pool(infrastructure.database_url, min_size=1, max_size=2)
        try:
            table = f"bench_rate_counts_{uuid.uuid4().hex[:8]}"  # the database may be shared
            await pool.execute(
                f"CREATE UNLOGGED TABLE {table} (key text, time_window bigint, hits integer, "
                "PRIMARY KEY (key, time_window))"
            )
            upsert, keys, window = UPSERT.format(table=table), _keys(hits), int(time.time() // 3600)
            try:
                wall, cpu = time.perf_counter(), time.process_time()
                for key in keys:
                    await pool.fetchval(upsert, key, window)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            finally:
                await pool.execute(f"DROP TABLE {table}")
        finally:
            await pool.close()
    return {"hits": hits, "us_per_hit": wall / hits * 1e6, "cpu_us_per_hit": cpu / hits * 1e6}


def run(hits: int) -> dict:
    ways: dict[str, dict] = {}
    with Progress(console=console, transient=True) as progress, tempfile.TemporaryDirectory() as directory:
        task = progress.add_task("rate-limit hits", total=4)
        ways["one process (LocalWindow, baseline)"] = _timed(LocalWindow(RATE).hit, _keys(hits))
        progress.advance(task)
        ways["shared file (HostWindow)"] = _timed(HostWindow(RATE, Path(directory) / "alone").hit, _keys(hits))
        progress.advance(task)
        ways["shared file, 2 processes at once"] = shared_by_two(Path(directory) / "contended", hits)
        progress.advance(task)
        # A round trip per hit: a tenth of the hits tells the cost as well.
        ways["PostgreSQL row (UNLOGGED upsert)"] = asyncio.run(postgres_rows(max(500, hits // 10)))
        progress.advance(task)
    baseline = ways["one process (LocalWindow, baseline)"]
    for figures in ways.values():
        figures["ratio_to_baseline"] = figures["us_per_hit"] / baseline["us_per_hit"]
    return {"hits": hits, "clients": CLIENTS, "cpus": os.cpu_count(), "ways": ways}


def print_report(report: dict) -> None:
    table = Table(title=f"One rate-limit hit ({report['clients']:,} clients; same process, same machine)")
    for column in ("where the counters live", "hits", "µs per hit", "CPU µs per hit", "ratio to one process"):
        table.add_column(column, justify="left" if column.startswith("where") else "right")
    for name, figures in report["ways"].items():
        table.add_row(name, f"{figures['hits']:,}", f"{figures['us_per_hit']:.2f}", f"{figures['cpu_us_per_hit']:.2f}",
                      f"{figures['ratio_to_baseline']:.1f}x")
    console.print(table)


def write_chart(report: dict, out: Path) -> Path:
    chart = blank_chart()
    axes = chart.add_subplot(1, 1, 1)
    names = list(report["ways"])
    values = [report["ways"][n]["us_per_hit"] for n in names]
    axes.barh(names, values, color=["C7", "C0", "C0", "C3"])
    axes.set_xscale("log")
    axes.set_xlabel("µs per hit (log scale)")
    axes.set_title("What one rate-limit hit costs, by where the counters live")
    for y, value in enumerate(values):
        axes.annotate(f" {value:.1f} µs", (value, y), va="center")
    path = out.with_suffix(".png")
    chart.savefig(path, format="png")
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hits", type=int, default=200_000, help="hits per way (default 200,000)")
    parser.add_argument("--out", default=str(OUT), help="where the JSON goes (the chart beside it)")
    args = parser.parse_args(argv)
    report = run(args.hits)
    publish(report, Path(args.out), print_report, write_chart, console.print)
    return report


if __name__ == "__main__":
    main()
