"""``bench/replay.py`` runs on the test servers and reports both paths.

Not a speed test (no figure is compared with anything): it keeps the
benchmark from rotting as the replay and the insights projection change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bench import run_bench

pytestmark = pytest.mark.integration


def test_the_quick_replay_benchmark_rebuilds_both_ways_and_reports(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "replay.json"
    done = run_bench("replay.py", "--events", "3000", "--baseline-timeout", "120", "--out", str(out),
                     env={"BINOME_DATABASE_URL": database_url, "BINOME_KAFKA_BOOTSTRAP": kafka_bootstrap})
    report = json.loads(out.read_text())
    assert report["events"] >= 3000
    assert report["binome"]["applied"] == report["events"]
    assert report["baseline"]["applied"] == report["events"] and report["baseline"]["complete"]
    assert report["ratio"] > 0
    assert all(count > 0 for count in report["tables"].values()), report["tables"]
    assert report["same_read_model"] and set(report["checksums"]) == set(report["tables"])
    for path in ("binome", "baseline"):
        assert report[path]["python_cpu_us_per_event"] > 0 and report[path]["postgres_cpu_us_per_event"] > 0
    assert out.with_suffix(".png").stat().st_size > 0
    assert "ratio Binome / before" in done.stdout
    assert "same read model" in done.stdout and "CPU" in done.stdout
