"""What the small benchmarks share: a blank chart, and where a report goes
(its JSON, the table printed, the chart beside the JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def blank_chart(width: float = 9, height: float = 4.5) -> Any:
    """A matplotlib figure drawn off screen (no display here or in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def publish(report: dict, out: Path, show: Callable[[dict], None], draw: Callable[[dict, Path], Path],
            say: Callable[[str], None] = print) -> None:
    """Write ``report`` to ``out`` (JSON), print its table (``show``), draw its chart beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    show(report)
    say(f"written to {out}; chart: {draw(report, out)}")
