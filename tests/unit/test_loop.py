"""libs/runtime/loop.py: `binome up` runs on uvloop when it is installed, on asyncio's loop otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from libs.runtime import loop


async def running_loop() -> asyncio.AbstractEventLoop:
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


def test_run_uses_uvloop_when_installed() -> None:
    assert isinstance(loop.run(running_loop()), uvloop.Loop)


def test_run_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` sees when it is not installed
    used = loop.run(running_loop())
    assert not isinstance(used, uvloop.Loop)
    assert isinstance(used, asyncio.BaseEventLoop)


def test_run_returns_the_result_and_raises_the_error() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    assert loop.run(asyncio.sleep(0, result=42)) == 42
    with pytest.raises(ValueError, match="boom"):
        loop.run(fails())
