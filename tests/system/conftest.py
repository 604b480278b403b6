"""System tests: the assembled platform started as a subprocess (``binome up``),
faults injected from outside. See tests/support/platform_process.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.platform_process import PlatformProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/system/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    """One embedded platform shared by a module's tests (each test uses its own organisation)."""
    with PlatformProcess.start(tmp_path_factory.mktemp("platform")) as running:
        yield running
