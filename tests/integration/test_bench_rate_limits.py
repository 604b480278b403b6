"""``bench/rate_limits.py`` runs on the test database and reports every way.

Not a speed test (no figure is compared with anything): it keeps the
benchmark from rotting as the rate limits change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bench import run_bench

pytestmark = pytest.mark.integration


def test_the_quick_rate_limit_benchmark_reports_every_way(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "rate_limits.json"
    done = run_bench("rate_limits.py", "--hits", "2000", "--out", str(out), env={"BINOME_DATABASE_URL": database_url})
    report = json.loads(out.read_text())
    assert set(report["ways"]) == {
        "one process (LocalWindow, baseline)", "shared file (HostWindow)", "shared file, 2 processes at once",
        "PostgreSQL row (UNLOGGED upsert)",
    }
    for figures in report["ways"].values():
        assert figures["hits"] >= 500 and figures["us_per_hit"] > 0 and figures["ratio_to_baseline"] > 0
        assert figures["cpu_us_per_hit"] >= 0
    assert out.with_suffix(".png").stat().st_size > 0
    assert "ratio to one process" in done.stdout
