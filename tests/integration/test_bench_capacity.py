"""``bench/capacity.py`` runs on the test servers and reports every figure
behind the README's "What a programme holds". Not a speed test (no figure is
compared with anything): it keeps the benchmark from rotting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bench import run_bench

pytestmark = pytest.mark.integration


def test_the_small_capacity_benchmark_fills_a_wave_and_a_programme(database_url: str, kafka_bootstrap: str,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "capacity.json"
    done = run_bench(
        "capacity.py", "--participants", "450", "--file-rows", "200", "--waves", "24", "--countries", "12",
        "--out", str(out), env={"BINOME_DATABASE_URL": database_url, "BINOME_KAFKA_BOOTSTRAP": kafka_bootstrap},
    )  # fmt: skip
    report = json.loads(out.read_text())
    wave, spread = report["participants_per_wave"], report["waves_per_programme"]
    assert (wave["participants"], wave["files"]) == (450, 3)
    assert wave["funnel"]["mentees"]["enrolled"] + wave["funnel"]["mentors"]["enrolled"] == 450
    assert (spread["waves"], spread["countries"], spread["one_country_waves"]) == (24, 12, 2)
    assert "participants imported into one wave" in done.stdout
