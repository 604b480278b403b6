"""One replay on several cores: the streams split among processes.

A replay's Python (decoding, handlers, statements) runs on one core, and it
waits for PostgreSQL between batches. Handing decoded events to the applying
process costs more than decoding them (pickling pydantic models), so each
process does everything for its own part of the log instead: ``workers``
processes, each a ``Replayer`` with ``partition=(index, workers)``, read the
streams whose hash falls in their part (``EventStore.read_committed_in``) and
apply them in their own transactions.

That keeps the replay's promises because a projection's rows are keyed by the
aggregate whose stream writes them (insights' facts, ``facts/batching.py``):
streams in different parts touch different rows, and each stream is applied
in its order by one process. The parts share:

* one snapshot per source, taken by this process before any part starts, so
  every part reads exactly the events committed before the replay began;
* the claims in ``applied_events`` (each event is in one part; the live
  consumer's claims work as with one process);
* a barrier before ``replay_done``: each part recomputes what it touched
  (insights' pair activity) only once every part has applied its events, so a
  fact written by another part is never missed.

A worker is built in its process by ``recipe``: a picklable callable (a
top-level function, or a ``functools.partial`` of one) returning an async
context manager that yields its ``Replayer`` (with pools of its own).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import fields

from libs.messaging.replayer import Replayed, Replayer

WorkerRecipe = Callable[[], AbstractAsyncContextManager[Replayer]]

_APPLIED, _GO = "applied", "go"


class WorkerFailed(RuntimeError):
    pass


async def run_partitioned(local: Replayer, recipe: WorkerRecipe, workers: int) -> Replayed:
    """Part 0 in ``local`` (this process), parts 1..workers-1 in processes built by ``recipe``."""
    if workers <= 1:
        return await local.run()
    context = multiprocessing.get_context("spawn")  # no forked event loop or pool
    snapshots = await local.take_snapshots()
    progress = context.Value("q", 0)
    pipes: list[multiprocessing.connection.Connection] = []
    processes = []
    for index in range(1, workers):
        ours, theirs = context.Pipe()
        process = context.Process(target=_worker_main, args=(recipe, index, workers, snapshots, theirs, progress),
                                  name=f"replay-part-{index}", daemon=True)
        process.start()
        theirs.close()
        pipes.append(ours)
        processes.append(process)

    shown = 0
    report = local.on_advance

    def advance(n: int) -> None:
        nonlocal shown
        if report is not None:
            others = progress.value
            report(n + others - shown)
            shown = others

    async def barrier() -> None:
        for pipe in pipes:
            _expect(await asyncio.to_thread(pipe.recv), _APPLIED)
        for pipe in pipes:
            pipe.send(_GO)

    local.partition, local.snapshots, local.before_done, local.on_advance = (0, workers), snapshots, barrier, advance
    try:
        outcome = await local.run()
        for pipe in pipes:
            _merge(outcome, _expect(await asyncio.to_thread(pipe.recv), Replayed))
        advance(0)  # what the others applied since the last batch here
    finally:
        for process in processes:
            await asyncio.to_thread(process.join, 5)
            if process.is_alive():  # this process failed first: the others have nothing left to do
                process.terminate()
    return outcome


def _expect(message: object, wanted: object) -> object:
    if isinstance(message, str) and message.startswith("failed: "):
        raise WorkerFailed(message.removeprefix("failed: "))
    if message != wanted and not (isinstance(wanted, type) and isinstance(message, wanted)):
        raise WorkerFailed(f"unexpected message from a replay worker: {message!r}")
    return message


def _merge(outcome: Replayed, part: Replayed) -> None:
    """Counts add up; the times are this process's (it waited for every part)."""
    for f in fields(Replayed):
        if f.type == "int":
            setattr(outcome, f.name, getattr(outcome, f.name) + getattr(part, f.name))


def _worker_main(recipe: WorkerRecipe, index: int, count: int, snapshots: list[str],
                 pipe: multiprocessing.connection.Connection, progress) -> None:
    try:
        asyncio.run(_worker(recipe, index, count, snapshots, pipe, progress))
    except BaseException as exc:  # reported to the first process, which raises it
        pipe.send(f"failed: {type(exc).__name__}: {exc}")
        raise SystemExit(1) from exc


async def _worker(recipe: WorkerRecipe, index: int, count: int, snapshots: list[str],
                  pipe: multiprocessing.connection.Connection, progress) -> None:
    from libs.runtime.heap import freeze_startup_heap

    async with recipe() as replayer:
        freeze_startup_heap()

        async def barrier() -> None:
            pipe.send(_APPLIED)
            _expect(await asyncio.to_thread(pipe.recv), _GO)

        def advance(n: int) -> None:
            with progress.get_lock():
                progress.value += n

        replayer.partition, replayer.snapshots, replayer.before_done = (index, count), snapshots, barrier
        replayer.on_advance = advance
        done = await replayer.run()
    pipe.send(done)
