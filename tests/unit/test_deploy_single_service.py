"""``binome up --service NAME``: one service per process, as each container of
docker-compose.yml runs it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import libs.cli as cli
import libs.observability.logging as logging_setup
import libs.runtime.platform as platform
import libs.runtime.run_dir as run_dir
from libs.runtime.platform import select_services
from libs.runtime.service import ServiceDefinition


def definition(name: str) -> ServiceDefinition:
    return ServiceDefinition(name=name, create_app=lambda ctx: None)  # type: ignore[arg-type,return-value]


ALL = [definition("enrollment"), definition("matching"), definition("sessions")]


def test_no_name_selects_every_service() -> None:
    assert select_services(ALL, None) == ALL
    assert select_services(ALL, []) == ALL


def test_names_select_in_declared_order() -> None:
    assert [s.name for s in select_services(ALL, ["sessions", "enrollment"])] == ["enrollment", "sessions"]


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown service\\(s\\) billing; known: enrollment, matching, sessions"):
        select_services(ALL, ["enrollment", "billing"])


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict:
    """``binome up`` with its server and logging replaced by recorders."""
    seen: dict = {}

    async def fake_serve(settings, services, workers, log_format) -> None:
        seen["port"], seen["services"] = settings.port, [s.name for s in services]
        seen["workers"] = workers

    monkeypatch.setattr(cli, "_services", lambda: ALL)
    monkeypatch.setattr(platform, "serve", fake_serve)
    # Several workers: the run directory is prepared before anything imports prometheus-client.
    monkeypatch.setattr(run_dir, "prepare_run_dir", lambda data_dir: seen.setdefault("run_dir_prepared", True))
    # The command imports its logging setup when it runs (libs/cli.py).
    monkeypatch.setattr(logging_setup, "configure_logging", lambda log_format: seen.setdefault("log_format", log_format))
    return seen


def test_up_serves_only_the_named_service(captured: dict) -> None:
    result = CliRunner().invoke(
        cli.app, ["up", "--service", "matching", "--port", "8123", "--log-format", "json", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert captured == {"port": 8123, "services": ["matching"], "log_format": "json", "workers": 1}


def test_up_serves_everything_by_default(captured: dict) -> None:
    result = CliRunner().invoke(cli.app, ["up"])
    assert result.exit_code == 0, result.output
    assert captured["services"] == ["enrollment", "matching", "sessions"] and captured["log_format"] == "auto"


def test_up_runs_one_http_worker_per_core_by_default(captured: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 3)
    assert CliRunner().invoke(cli.app, ["up"]).exit_code == 0
    assert captured["workers"] == 3 and captured["run_dir_prepared"]
    captured.clear()
    assert CliRunner().invoke(cli.app, ["up", "--workers", "1"]).exit_code == 0
    assert captured["workers"] == 1 and "run_dir_prepared" not in captured  # one process, as before
    assert CliRunner().invoke(cli.app, ["up", "--workers", "0"]).exit_code == 2


def test_up_refuses_an_unknown_service_or_format(captured: dict) -> None:
    unknown = CliRunner().invoke(cli.app, ["up", "--service", "billing"])
    assert unknown.exit_code == 2 and "billing" in unknown.output
    bad_format = CliRunner().invoke(cli.app, ["up", "--log-format", "xml"])
    assert bad_format.exit_code == 2
    assert "services" not in captured  # nothing was started
