"""``bench/pipeline.py`` runs on the test servers and reports every figure.

Not a speed test (the figures are not compared with anything): it keeps the
benchmark from rotting as the code it measures changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bench import run_bench

pytestmark = pytest.mark.integration

FIGURES = {
    "appends_single", "appends_batched", "relay", "e2e",
    "latency_p50", "latency_p99", "latency_appended_p99", "latency_published_p99", "latency_applied_p99",
}


def test_the_quick_pipeline_benchmark_reports_every_figure(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "pipeline.json"
    done = run_bench("pipeline.py", "--quick", "--no-baseline", "--out", str(out),
                     env={"BINOME_DATABASE_URL": database_url, "BINOME_KAFKA_BOOTSTRAP": kafka_bootstrap})
    report = json.loads(out.read_text())
    figures = {f["key"]: f for f in report["figures"]}
    assert set(figures) == FIGURES
    assert all(f["binome"] is not None and 0 < f["binome"] < float("inf") for f in figures.values())
    p99 = figures["latency_p99"]["details"]["binome"]
    assert p99["arrived"] == p99["sent"] == 3_000  # every paced event reached the read model
    assert len(p99["visible"]["p99_ms_per_second"]) == 3
    assert set(report["aims"]) == {"e2e_events_per_s", "latency_p99_ms"}
    assert out.with_suffix(".svg").stat().st_size > 0 and out.with_suffix(".png").stat().st_size > 0
    assert "aim e2e_events_per_s" in done.stdout
