"""``binome demo``: a multinational reverse-mentoring rollout, driven through
the public HTTP APIs of a running platform (``binome up``), over simulated
months (the platform's dev clock).

    world.py    the organisation, countries, waves and people, from a seed
    api.py      the HTTP client: dev tokens, Idempotency-Keys, retries, waits for facts
    runner.py   the story, week by week
    report.py   waits for insights, prints the dashboard, writes the pictures
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from libs.demo.api import DemoError
from libs.demo.report import collect, render
from libs.demo.runner import Demo, Options, Pair
from libs.demo.world import Wave

__all__ = ["DemoError", "Options", "Result", "run_demo"]


@dataclass
class Result:
    """A whole demo: the story (runner.py) and what the services showed (report.py)."""

    programme_id: str
    out_dir: Path
    files: dict[str, Path]
    counts: Counter
    pairs: list[Pair]
    waves: list[Wave]
    rollout: dict[str, Any]
    network: dict[str, Any]
    at_risk: list[dict[str, Any]]
    results: dict[str, Any]
    elapsed_s: float
    requests: int


async def run_demo(options: Options, console: Console | None = None) -> Result:
    """Run the demo with progress bars on ``console`` (none when it is quiet), then print the report."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file: wide enough for the dashboard
            console = Console(width=140)
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, disable=console.quiet,
    )
    demo = Demo(options, progress)
    waves, people = demo.world.waves, demo.world.people()
    console.print(
        f"Rolling out a reverse-mentoring programme in {len(demo.world.countries)} countries "
        f"({len(waves)} waves, {sum(p.role == 'mentor' for p in people)} mentors, "
        f"{sum(p.role == 'mentee' for p in people)} executives as mentees) on {options.base_url}, "
        f"seed {options.seed}, {options.weeks} simulated weeks per pair"
    )
    started = time.monotonic()
    try:
        with progress:
            await demo.run()
            found = await collect(demo.api, demo.programme_id, demo.counts, demo.out_dir, progress)
    finally:
        await demo.api.close()
    result = Result(
        demo.programme_id, found.out_dir, found.files, demo.counts, list(demo.pairs.values()), demo.world.waves,
        found.rollout, found.network, found.at_risk, found.results, time.monotonic() - started, demo.api.requests,
    )
    render(found, result.counts, result.elapsed_s, result.requests, console)
    return result
