"""``bench/rate_limits.py`` runs on the test database and reports every way.

Not a speed test (no figure is compared with anything): it keeps the
benchmark from rotting as the rate limits change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_rate_limit_benchmark_reports_every_way(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "rate_limits.json"
    env = {**os.environ, "BINOME_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "bench/rate_limits.py", "--hits", "2000", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
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
