"""``bench/api.py`` runs on ``binome up`` in its tiny mode and reports every figure.

Not a speed test (no figure is compared with anything): it keeps the
benchmark from rotting as the platform changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bench import run_bench

pytestmark = pytest.mark.integration

CLASSES = {"participants", "pair", "rollout", "enrol", "enrol-service", "floor"}
#: Measured on the enrollment service alone: no latency sweep.
SWEPT = CLASSES - {"enrol-service"}


def test_the_tiny_sweep_reports_cpu_and_latency_of_every_endpoint_class(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    done = run_bench("api.py", "--tiny", "--statements", "--out", str(out), timeout=600)
    report = json.loads(out.read_text())
    assert {c["endpoint"] for c in report["cpu"]} == CLASSES
    for figure in report["cpu"]:
        assert figure["ok"] > 0 and figure["python_ms_gross"] > 0, figure
        assert all(figure[k] is not None for k in ("python_ms_net", "postgres_ms_gross", "postgres_ms_net")), figure
        if figure["endpoint"] != "floor":  # the bare app has no database
            # Every request of a service leaves one audit record: counted, one statement.
            audit = [calls for query, calls in figure["top_statements"] if query.startswith("INSERT INTO") and
                     ".audit_log " in query]
            assert figure["statements_per_request"] > 0 and audit, figure
    # The write on the whole platform feeds the projections of five other
    # services; on the enrollment service alone, its request and relay only.
    downstream = {"matching.", "evaluation.", "sessions.", "insights.", "notifications."}
    sent = {f["endpoint"]: {query for query, _ in f["top_statements"]} for f in report["cpu"] if f["top_statements"]}
    whole, alone = sent["enrol"], sent["enrol-service"]
    assert any(schema in query for query in whole for schema in downstream), whole
    assert not any(schema in query for query in alone for schema in downstream), alone
    assert any(query.startswith("DELETE FROM enrollment.outbox") for query in alone), alone  # its relay published
    assert report["aims"]["cpu enrol-service"]["aim_ms"] == 4.0 and report["aims"]["cpu enrol"]["aim_ms"] is None
    assert {s["endpoint"] for s in report["steps"]} == SWEPT
    for step in report["steps"]:
        assert step["answered_rps"] > 0 and step["p50_ms"] is not None and step["p99_ms"] is not None, step
    assert {name.split()[1] for name in report["aims"]} == CLASSES - {"floor"}
    assert report["seeded"]["participants_per_page"] > 0
    assert out.with_suffix(".png").stat().st_size > 0 and out.with_suffix(".svg").stat().st_size > 0
    assert "CPU per request, ms" in done.stdout and "aims:" in done.stdout


def test_the_shedding_mode_reports_goodput_with_the_bound(tmp_path: Path) -> None:
    out = tmp_path / "api_shedding.json"
    run_bench("api.py", "--mode", "shedding", "--only", "on", "--step", "2", "--patience", "1", "--out", str(out),
              timeout=600)
    report = json.loads(out.read_text())
    assert report["saturating_rps_shedding_on"] > 0
    assert len(report["steps"]) == 4 and all(s["goodput_rps"] > 0 for s in report["steps"]), report["steps"]
    assert out.with_suffix(".png").stat().st_size > 0
