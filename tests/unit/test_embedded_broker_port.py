"""The embedded broker's port is never the HTTP port ``binome up`` is about
to bind: both were free when picked, the HTTP one is bound only once the
broker runs, and a broker on it made ``binome up`` exit (seen in the system
tests: "address already in use", exit 3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from libs.embedded import broker as broker_module
from libs.runtime import platform
from libs.settings import Settings


class _Socket:
    """What ``free_port`` uses of a socket: the OS hands out ``ports`` in turn."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports

    def __call__(self, *args: Any) -> _Socket:
        return self

    def __enter__(self) -> _Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        self.port = self.ports.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_to_avoid_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module.socket, "socket", _Socket([8000, 8000, 8123]))
    assert broker_module.free_port(avoid={8000}) == 8123


def test_a_real_port_is_free_and_not_avoided() -> None:
    taken = broker_module.free_port()
    assert broker_module.free_port(avoid={taken}) != taken


def test_binome_up_keeps_its_http_port_from_the_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked: list[set[int]] = []

    def noting_free_port(avoid: Any = ()) -> int:
        asked.append(set(avoid))
        return 9999

    async def started(self: broker_module.EmbeddedBroker, timeout: float = 15.0) -> broker_module.EmbeddedBroker:
        return self  # no Tansu process: only the port chosen matters here

    monkeypatch.setattr(platform, "free_port", noting_free_port)
    monkeypatch.setattr(broker_module.EmbeddedBroker, "start_async", started)
    settings = Settings(data_dir=tmp_path, database_url="postgresql://unused/db", port=8765)
    infrastructure = asyncio.run(platform.start_infrastructure(settings))
    assert asked == [{8765}] and infrastructure.bootstrap == "127.0.0.1:9999"
