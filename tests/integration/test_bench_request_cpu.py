"""``bench/request_cpu.py`` runs over a tiny world and reports every figure of
both sides.

Not a speed test (no figure is compared with anything): it keeps the
benchmark from rotting as the platform changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bench import ROOT, run_bench

pytestmark = pytest.mark.integration


def test_the_tiny_run_reports_each_reads_cpu_on_both_sides(tmp_path: Path) -> None:
    out = tmp_path / "request_cpu.json"
    done = run_bench(
        "request_cpu.py", "--world", "tiny", "--baseline", str(ROOT), "--rounds", "1", "--requests", "20",
        "--batch", "10", "--warmup", "5", "--pace-ms", "1", "--out", str(out), timeout=600,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["pace_ms"] == 1
    for side in ("before", "after"):
        for name in ("participants", "pair", "rollout"):
            (run,) = report["runs"][side][name]
            assert run["median_ms"] > 0 and run["min_ms"] > 0 and len(run["batches_ms"]) == 2, (side, name, run)
    assert "Python CPU per request in process" in done.stdout and "after/before" in done.stdout
    assert "a pause of 1 ms after each request" in done.stdout
