"""``binome token``: a batch of tokens in one call, a warning when the data
dir has no platform key, and a start that loads only what signing needs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE
from libs.auth.tokens import TokenVerifier
from libs.cli import app
from libs.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BINOME_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["token", *args], input=stdin)


def test_a_batch_mints_every_token_and_each_verifies(data_dir: Path, tmp_path: Path) -> None:
    specs = [
        {"sub": "hr1", "org": "acme", "roles": [HR_ADMIN]},
        {"sub": "fr-committee", "org": "acme", "roles": [REGIONAL_COMMITTEE], "countries": ["fr", "BE"], "ttl": 60},
        {"sub": "robot", "org": "globex", "roles": [HR_ADMIN], "client_id": "etl"},
    ]
    batch = tmp_path / "specs.json"
    batch.write_text(json.dumps(specs))
    result = invoke("--batch", str(batch))
    assert result.exit_code == 0, result.output
    minted = json.loads(result.stdout)
    assert [m["sub"] for m in minted] == ["hr1", "fr-committee", "robot"]
    verifier = TokenVerifier.from_settings(Settings(data_dir=data_dir))
    people = [verifier.verify(m["token"]) for m in minted]
    assert [(p.subject, p.organisation) for p in people] == [("hr1", "acme"), ("fr-committee", "acme"), ("robot", "globex")]
    assert people[1].countries == frozenset({"FR", "BE"})
    assert people[2].client_id == "etl"


def test_a_batch_reads_standard_input(data_dir: Path) -> None:
    result = invoke("--batch", "-", stdin=json.dumps([{"sub": "a", "org": "o", "roles": [HR_ADMIN]}]))
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 1


def test_a_wrong_batch_names_the_entry_and_field_and_mints_nothing(data_dir: Path) -> None:
    bad = [{"sub": "a", "org": "o", "roles": ["boss"]}, {"org": "o", "roles": [HR_ADMIN]}]
    result = invoke("--batch", "-", stdin=json.dumps(bad))
    assert result.exit_code == 2
    assert "[0.roles]" in result.output and "unknown role(s): boss" in result.output
    assert "[1.sub]" in result.output
    assert "eyJ" not in result.output


def test_batch_and_single_options_do_not_mix(data_dir: Path) -> None:
    result = invoke("--batch", "-", "--sub", "a", stdin="[]")
    assert result.exit_code == 2
    assert "either --batch or" in result.output


def test_a_single_token_needs_its_subject_organisation_and_role(data_dir: Path) -> None:
    result = invoke("--org", "acme")
    assert result.exit_code == 2
    assert "missing --sub, --role" in result.output


def test_it_warns_on_stderr_when_it_has_to_make_the_platform_key(data_dir: Path) -> None:
    first = invoke("--sub", "a", "--org", "o", "--role", HR_ADMIN)
    assert first.exit_code == 0
    assert "holds no platform key" in first.stderr
    assert first.stdout.startswith("eyJ")  # the token alone on stdout, usable in $(...)
    again = invoke("--sub", "a", "--org", "o", "--role", HR_ADMIN)
    assert again.exit_code == 0
    assert again.stderr == ""


def test_the_command_line_loads_no_server_machinery() -> None:
    """``binome token`` must answer at once: importing the CLI loads neither
    the event models, nor the database driver, nor the web framework, nor
    the logging setup (each command imports what it needs when it runs)."""
    code = (
        "import sys, libs.cli; "
        "heavy = ('asyncpg', 'aiokafka', 'fastapi', 'structlog', 'libs.events', 'libs.auth.tokens', 'services'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
