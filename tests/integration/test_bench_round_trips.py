"""``bench/round_trips.py`` runs on the test database and reports every pace.

Not a speed test (no figure is compared with anything): it keeps the
benchmark from rotting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bench import run_bench

pytestmark = pytest.mark.integration


def test_the_round_trip_benchmark_reports_every_pace(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "round_trips.json"
    done = run_bench("round_trips.py", "--trips", "200", "--out", str(out), env={"BINOME_DATABASE_URL": database_url})
    report = json.loads(out.read_text())
    assert list(report["paces"]) == ["back to back (baseline)", "every 1 ms", "every 5 ms", "every 20 ms"]
    for figures in report["paces"].values():
        assert figures["iterations"] >= 100 and figures["cpu_us_per_iteration"] > 0
        assert figures["ratio_to_baseline"] != 0
    assert report["paces"]["back to back (baseline)"]["wake_up_cpu_us"] == 0
    assert report["paces"]["every 20 ms"]["wake_up_cpu_us"] > 0
    assert out.with_suffix(".png").stat().st_size > 0
    assert "ratio to back to back" in done.stdout
