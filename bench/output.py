"""What the small benchmarks share: a database to measure on, a blank
chart, and where a report goes (its JSON, the table printed, the chart
beside the JSON)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any


@contextlib.asynccontextmanager
async def database(prefix: str) -> AsyncIterator[Any]:
    """The platform's infrastructure without a broker: PostgreSQL at
    ``BINOME_DATABASE_URL``, else an embedded server in a temporary directory
    (``infrastructure.postgres`` is then set). Yields the ``Infrastructure``."""
    from libs.runtime.platform import start_infrastructure
    from libs.settings import Settings

    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        settings = Settings(data_dir=Path(directory), kafka_bootstrap="unused")  # no broker needed
        infrastructure = await start_infrastructure(settings)
        try:
            yield infrastructure
        finally:
            infrastructure.close()


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
