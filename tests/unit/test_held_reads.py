"""``libs.api.held_reads``: a read is answered again only while nothing it
came from may have changed, and only while changes can be heard.

The listening over a real connection is tests/integration/test_held_reads.py;
the promise across the workers of ``binome up`` is tests/system/test_held_reads.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from libs.api.held_reads import AnnouncedWrites, HeldReads, NothingHeld, TableChanges
from libs.runtime.shared_file import SharedFile


class Reads:
    """A read that counts its calls and answers a new value each time."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        return f"page {self.calls}"


def listening(changes: TableChanges | None = None) -> TableChanges:
    changes = changes or TableChanges()
    changes._set_listening(True)
    return changes


def always(_value: object) -> bool:
    return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_page_is_answered_again_while_nothing_changed() -> None:
    held, read = HeldReads(listening(), max_age_s=5), Reads()

    answers = [await held.read("key", read, always) for _ in range(3)]

    assert answers == ["page 1"] * 3 and read.calls == 1


async def test_a_write_this_host_announced_or_a_change_heard_makes_it_read_again() -> None:
    changes = listening()
    held, read = HeldReads(changes, max_age_s=5), Reads()
    await held.read("key", read, always)

    changes.announce()
    assert await held.read("key", read, always) == "page 2"
    changes.heard("connection", 1234, "binome_read_tables", "enrollment")
    assert await held.read("key", read, always) == "page 3"
    assert await held.read("key", read, always) == "page 3"


async def test_a_change_during_the_read_is_not_missed() -> None:
    """The moment is taken before the read: a page read while a change
    commits is never answered again."""
    changes = listening()
    held = HeldReads(changes, max_age_s=5)
    calls = 0

    async def read_while_it_changes() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            changes.heard()  # the change arrives while the statement runs
        return f"page {calls}"

    assert await held.read("key", read_while_it_changes, always) == "page 1"
    assert await held.read("key", read_while_it_changes, always) == "page 2"
    assert await held.read("key", read_while_it_changes, always) == "page 2"


async def test_nothing_is_held_while_changes_cannot_be_heard() -> None:
    changes = TableChanges()  # not listening yet
    held, read = HeldReads(changes, max_age_s=5), Reads()
    await held.read("key", read, always)
    await held.read("key", read, always)
    assert read.calls == 2 and len(held) == 0

    changes._set_listening(True)
    await held.read("key", read, always)
    await held.read("key", read, always)
    assert read.calls == 3

    changes._set_listening(False)  # the listening connection was lost
    await held.read("key", read, always)
    assert read.calls == 4
    changes._set_listening(True)  # back: what was held before the loss is not answered
    await held.read("key", read, always)
    assert read.calls == 5


async def test_a_page_is_held_for_max_age_at_most() -> None:
    clock = Clock()
    held, read = HeldReads(listening(), max_age_s=5, clock=clock), Reads()
    await held.read("key", read, always)
    clock.now += 4.9
    await held.read("key", read, always)
    assert read.calls == 1
    clock.now += 0.2
    await held.read("key", read, always)
    assert read.calls == 2


async def test_a_page_that_is_not_holdable_is_read_every_time() -> None:
    held, read = HeldReads(listening(), max_age_s=5), Reads()
    for _ in range(3):
        await held.read("key", read, lambda page: page != "page 1" and page != "page 2")
    assert read.calls == 3
    assert await held.read("key", read, always) == "page 3"  # the last one was holdable


async def test_pages_are_held_per_key_and_the_least_recently_used_go_first() -> None:
    held, read = HeldReads(listening(), max_age_s=5, max_held=2), Reads()
    assert await held.read("a", read, always) == "page 1"
    assert await held.read("b", read, always) == "page 2"
    assert await held.read("a", read, always) == "page 1"  # a is now the most recent
    assert await held.read("c", read, always) == "page 3"  # b goes
    assert len(held) == 2
    assert await held.read("a", read, always) == "page 1"
    assert await held.read("b", read, always) == "page 4"


async def test_a_read_that_fails_holds_nothing() -> None:
    held = HeldReads(listening(), max_age_s=5)

    async def failing() -> str:
        raise LookupError("404")

    with pytest.raises(LookupError):
        await held.read("key", failing, always)
    assert len(held) == 0


async def test_zero_seconds_holds_nothing_and_nothing_held_reads_always() -> None:
    read = Reads()
    await HeldReads(listening(), max_age_s=0).read("key", read, always)
    await HeldReads(listening(), max_age_s=0).read("key", read, always)
    await NothingHeld().read("key", read, always)
    assert read.calls == 3


def test_the_host_counter_is_one_for_every_process_that_maps_it(tmp_path: Path) -> None:
    """Two workers: a write announced by one moves the other's moment."""
    path = tmp_path / "read-tables"
    one = listening(TableChanges(SharedFile(path, TableChanges.SHARED_SIZE)))
    other = listening(TableChanges(SharedFile(path, TableChanges.SHARED_SIZE)))
    before = other.moment()

    one.announce()

    assert other.moment() != before
    assert other.moment()[0] == one.moment()[0] == before[0] + 1  # type: ignore[index]


async def announced_by(changes: TableChanges, method: str, path: str) -> int:
    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def fails(request: Request) -> PlainTextResponse:
        raise RuntimeError("after its commit, before its answer")

    app = Starlette(routes=[Route("/ok", ok, methods=["GET", "POST", "PATCH", "DELETE", "HEAD"]),
                            Route("/fails", fails, methods=["POST"])])
    before = changes.moment()
    transport = httpx.ASGITransport(app=AnnouncedWrites(app, changes), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.request(method, path)
    after = changes.moment()
    assert before is not None and after is not None
    return after[0] - before[0]


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_a_request_that_may_write_is_announced_when_answered(method: str) -> None:
    # Once when its answer starts, once when it ends.
    assert await announced_by(listening(), method, "/ok") == 2


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_read_announces_nothing(method: str) -> None:
    assert await announced_by(listening(), method, "/ok") == 0


async def test_a_write_that_fails_after_its_commit_is_announced_all_the_same() -> None:
    assert await announced_by(listening(), "POST", "/fails") >= 1


async def test_listening_stops_with_the_platform() -> None:
    """``listen`` returns once ``stop`` is set, and is then not listening."""
    changes, stop, closed = TableChanges(), asyncio.Event(), asyncio.Event()

    class Connection:
        def add_termination_listener(self, callback: object) -> None:
            pass

        async def add_listener(self, channel: str, callback: object) -> None:
            assert channel == "binome_read_tables"

        async def close(self) -> None:
            closed.set()

    async def connect() -> Connection:
        return Connection()

    task = asyncio.create_task(changes.listen(connect, stop))  # type: ignore[arg-type]
    for _ in range(100):
        if changes.listening:
            break
        await asyncio.sleep(0.01)
    assert changes.moment() is not None
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert changes.moment() is None and closed.is_set()


async def test_what_may_not_be_answered_again_leaves_memory() -> None:
    """At the next read once the moment moved, or at a sweep in a quiet worker
    (an erased person's page does not linger)."""
    clock, changes = Clock(), listening()
    held, read = HeldReads(changes, max_age_s=5, clock=clock), Reads()
    await held.read("a", read, always)
    await held.read("b", read, always)
    changes.announce()
    await held.read("a", read, always)
    assert len(held) == 1  # b went with the moment

    held.sweep()
    assert len(held) == 1  # a is of this moment and young
    clock.now += 5
    held.sweep()
    assert len(held) == 0

    await held.read("a", read, always)
    changes.heard()
    held.sweep()  # nothing asked since the change
    assert len(held) == 0


async def test_the_sweep_runs_until_the_platform_stops() -> None:
    clock, changes, stop = Clock(), listening(), asyncio.Event()
    held, read = HeldReads(changes, max_age_s=0.05, clock=clock), Reads()
    await held.read("a", read, always)
    sweeping = asyncio.create_task(held.keep_fresh(stop))
    clock.now += 1
    await asyncio.sleep(0.2)
    assert len(held) == 0
    stop.set()
    await asyncio.wait_for(sweeping, timeout=1)
