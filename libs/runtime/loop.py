"""The event loop a long-running Binome process runs on.

uvloop (libuv underneath) runs asyncio's transports, timers and callbacks in
C: each request through uvicorn costs less Python than on the standard
library's loop (bench/api.py). It is used when installed and the process
falls back to asyncio's own loop otherwise, so a platform without the wheel
still runs, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Any:
    """uvloop's ``new_event_loop`` when installed, else None (asyncio's default)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)
