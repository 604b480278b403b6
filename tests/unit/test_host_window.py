"""``HostWindow``: the rate-limit counters that ``binome up --workers N``
shares between its HTTP worker processes (libs/api/limits.py)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from limits import parse

from libs.api.limits import HostWindow, LocalWindow


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_it_slides_like_the_local_window(tmp_path: Path) -> None:
    clock = FakeClock()
    shared, local = HostWindow(parse("3/minute"), tmp_path / "w", clock=clock), LocalWindow(parse("3/minute"), clock)
    for now, hits in ((0.0, 4), (60.0, 1), (100.0, 3), (1000.0, 2)):
        clock.now = now
        assert [shared.hit("k") for _ in range(hits)] == [local.hit("k") for _ in range(hits)], now
        assert shared.retry_after("k") == local.retry_after("k"), now
    assert shared.hit("other")


def test_two_mappings_of_one_file_share_the_budget(tmp_path: Path) -> None:
    clock = FakeClock()
    first, second = (HostWindow(parse("4/minute"), tmp_path / "w", clock=clock) for _ in range(2))
    assert [first.hit("k"), second.hit("k"), first.hit("k"), second.hit("k")] == [True] * 4
    assert not first.hit("k") and not second.hit("k")
    assert second.retry_after("k") == 60


def _hammer(path: Path, hits: int, results: multiprocessing.Queue) -> None:
    window = HostWindow(parse("1000/day"), path)
    results.put(sum(window.hit("client") for _ in range(hits)))


def test_concurrent_processes_get_exactly_the_budget(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # as binome up's workers: separate interpreters
    results = context.Queue()
    processes = [context.Process(target=_hammer, args=(tmp_path / "w", 400, results)) for _ in range(3)]
    for process in processes:
        process.start()
    allowed = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    assert sum(allowed) == 1000  # 1,200 asked, exactly the budget allowed, whoever asked
    assert min(allowed) >= 200  # the others took at most 800: every process counted in one table


def test_a_stale_slot_is_reused_and_a_full_neighbourhood_counts_locally(tmp_path: Path) -> None:
    clock = FakeClock()
    window = HostWindow(parse("1/minute"), tmp_path / "w", slots=4, clock=clock)
    assert all(window.hit(f"key-{i}") for i in range(4))  # every slot taken, all live
    assert window.hit("one-more")  # nowhere to go: counted in this process
    assert not window.hit("one-more")  # ...and still limited there
    clock.now = 180.0  # every slot two windows old: reused
    assert window.hit("late") and not window.hit("late")
    assert "late" not in window.overflow._counts


def test_the_shared_file_is_one_lock_for_threads_taking_it_at_once(tmp_path) -> None:
    """Two threads in ``with shared:`` at once: each increment is whole (the
    lock keeps no per-call state on the file, which threads would overwrite)."""
    import struct
    import threading

    from libs.runtime.shared_file import SharedFile

    shared = SharedFile(tmp_path / "counter", 8)
    count = struct.Struct("<q")

    def increment(times: int) -> None:
        for _ in range(times):
            with shared as memory:
                count.pack_into(memory, 0, count.unpack_from(memory)[0] + 1)

    threads = [threading.Thread(target=increment, args=(2000,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with shared.locked() as memory:
        assert count.unpack_from(memory)[0] == 8000
    shared.close()
