#!/usr/bin/env python
"""What one PostgreSQL round trip costs the platform's Python, by pace.

Run from the repository root::

    .venv/bin/python bench/round_trips.py                # 2,000 round trips per pace (about 1 min)
    .venv/bin/python bench/round_trips.py --trips 300

CPU per request (bench/api.py) counts every round trip a request makes to
PostgreSQL: the endpoint's query, the audit record, a command's BEGIN,
statements and COMMIT, and each consumer's. What one costs depends on how
busy the two processes are: back to back, both stay on their cores; one at a
time, each wakes the other from idle, and on a virtual machine a wake-up is
paid by the process that sends it (an interrupt to another virtual core).
This bench measures it, in one process on the platform's own loop (uvloop)
and pool (``libs.database``), one ``SELECT 1`` at a time:

* **back to back** (the baseline): the next query as soon as the answer came;
* **every 1, 5 and 20 ms**: a sleep between queries, as a request every few
  milliseconds leaves the server idle between them. The same sleeps without
  queries are measured too, and subtracted: the figure is the round trip's
  own CPU once the process has woken up anyway;
* **wake-up alone**: the sleep loop's own CPU per iteration (what a process
  pays to be woken by a timer, the cheapest wake-up there is).

Printed: CPU µs of this process (``time.process_time``: user and system,
every thread) per round trip, per pace, and the ratio to back to back.
PostgreSQL: ``BINOME_DATABASE_URL``, else the embedded server in a
temporary directory. Figures go to ``bench/out/round_trips.json``, the chart
beside it. No aim is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.output import blank_chart, database, publish  # noqa: E402

OUT = ROOT / "bench" / "out" / "round_trips.json"
#: Seconds between round trips; 0: back to back (the baseline).
PACES = (0.0, 0.001, 0.005, 0.020)
console = Console(width=None if sys.stdout.isatty() else 120)  # piped: no wrapping at 80


def label(pace: float) -> str:
    return "back to back (baseline)" if pace == 0 else f"every {pace * 1000:g} ms"


async def _cpu_per_iteration(iterations: int, pace: float, query) -> float:
    """CPU µs of this process per iteration: ``query`` (if any), then a sleep of ``pace``."""
    cpu = time.process_time()
    for _ in range(iterations):
        if query is not None:
            await query()
        if pace:
            await asyncio.sleep(pace)
    return (time.process_time() - cpu) / iterations * 1e6


async def measure(url: str, trips: int, progress: Progress) -> dict[str, dict[str, float]]:
    from libs.database import create_pool

    pool = await create_pool(url, min_size=1, max_size=1)
    try:

        async def select_one() -> None:
            await pool.fetchval("SELECT 1")

        await _cpu_per_iteration(100, 0, select_one)  # the statement prepared, the connection warm
        task = progress.add_task("round trips", total=len(PACES))
        paces: dict[str, dict[str, float]] = {}
        for pace in PACES:
            # Fewer iterations where each one sleeps: the figure settles as well.
            iterations = trips if pace < 0.005 else max(100, trips // 4)
            with_query = await _cpu_per_iteration(iterations, pace, select_one)
            sleep_only = await _cpu_per_iteration(iterations, pace, None) if pace else 0.0
            paces[label(pace)] = {
                "pace_ms": pace * 1000, "iterations": iterations, "cpu_us_per_iteration": with_query,
                "wake_up_cpu_us": sleep_only, "cpu_us_per_round_trip": with_query - sleep_only,
            }  # fmt: skip
            progress.advance(task)
        return paces
    finally:
        await pool.close()


async def run_on_database(trips: int) -> dict:
    async with database("binome-bench-round-trips-") as infrastructure:
        with Progress(console=console, transient=True) as progress:
            paces = await measure(infrastructure.database_url, trips, progress)
    return {"database": "embedded" if infrastructure.postgres else "BINOME_DATABASE_URL", "paces": paces}


def run(trips: int) -> dict:
    from libs.runtime import loop

    report = loop.run(run_on_database(trips))
    baseline = report["paces"][label(0)]["cpu_us_per_round_trip"]
    for figures in report["paces"].values():
        figures["ratio_to_baseline"] = figures["cpu_us_per_round_trip"] / baseline
    return {"trips": trips, "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()], **report}


def print_report(report: dict) -> None:
    table = Table(title=f"One PostgreSQL round trip (SELECT 1, uvloop, asyncpg; {report['database']} database)")
    for column in ("pace", "round trips", "CPU µs per round trip", "wake-up alone, CPU µs", "ratio to back to back"):
        table.add_column(column, justify="left" if column == "pace" else "right")
    for name, figures in report["paces"].items():
        table.add_row(name, f"{figures['iterations']:,}", f"{figures['cpu_us_per_round_trip']:.0f}",
                      f"{figures['wake_up_cpu_us']:.0f}" if figures["pace_ms"] else "-",
                      f"{figures['ratio_to_baseline']:.1f}x")
    console.print(table)


def write_chart(report: dict, out: Path) -> Path:
    chart = blank_chart()
    axes = chart.add_subplot(1, 1, 1)
    names = list(report["paces"])
    trips = [report["paces"][n]["cpu_us_per_round_trip"] for n in names]
    wakes = [report["paces"][n]["wake_up_cpu_us"] for n in names]
    axes.barh(names, trips, color="C0", label="the round trip")
    axes.barh(names, wakes, left=trips, color="C7", label="the timer wake-up before it")
    axes.invert_yaxis()
    axes.set_xlabel("CPU µs of the client process per iteration")
    axes.set_title("What one PostgreSQL round trip costs, by pace")
    axes.legend(loc="upper right")
    for y, (trip, wake) in enumerate(zip(trips, wakes, strict=True)):
        axes.annotate(f" {trip:.0f} µs", (trip + wake, y), va="center")
    path = out.with_suffix(".png")
    chart.savefig(path, format="png")
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trips", type=int, default=2000, help="round trips per pace (default 2,000)")
    parser.add_argument("--out", default=str(OUT), help="where the JSON goes (the chart beside it)")
    args = parser.parse_args(argv)
    report = run(args.trips)
    publish(report, Path(args.out), print_report, write_chart, console.print)
    return report


if __name__ == "__main__":
    main()
