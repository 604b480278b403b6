"""Every route and every dependency of every API is a coroutine.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a
hand-off to a worker thread and back on every request (a lock, a queue, two
thread switches), which cost more Python CPU than the rest of a page of
participants (bench/api.py). A coroutine that does no I/O costs nothing.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter

ROOT = Path(__file__).resolve().parents[2]


def routers() -> list[tuple[str, APIRouter]]:
    """Every module-level APIRouter of the repository's services and libraries."""
    files = subprocess.run(
        ["git", "grep", "-l", "APIRouter(", "--", "libs/*.py", "services/*.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    found = []
    for file in files:
        module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
        found += [(f"{module.__name__}.{name}", value) for name, value in vars(module).items()
                  if isinstance(value, APIRouter)]
    return found


def is_coroutine(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(getattr(call, "__call__", None))


def blocking_calls(dependant: Dependant) -> list[str]:
    out = []
    for sub in dependant.dependencies:
        if sub.call is not None and not is_coroutine(sub.call):
            out.append(getattr(sub.call, "__qualname__", repr(sub.call)))
        out += blocking_calls(sub)
    return out


def test_every_endpoint_and_dependency_runs_on_the_event_loop() -> None:
    found = routers()
    assert len(found) >= 10, found  # the scan sees the services' routers
    offenders = []
    for name, router in found:
        for route in router.routes:
            if isinstance(route, APIRoute):
                calls = blocking_calls(route.dependant) + ([] if is_coroutine(route.endpoint) else [route.name])
                offenders += [f"{name} {route.path}: {call}" for call in calls]
    assert offenders == []
