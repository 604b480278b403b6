"""``binome up --workers N``: the HTTP side in N processes on one port.

What runs where:

- the parent (``binome up`` itself) starts everything that must run once per
  platform: the embedded PostgreSQL and broker and their watchers, the
  migrations, every outbox relay, consumer, scheduler and delivery loop
  (``Platform.start``). It binds the listening socket, then starts N worker
  processes and watches them: a worker that dies is started again
  (libs/embedded/supervisor.py, ``component="http worker"``). It serves no
  HTTP itself.
- each worker (libs/runtime/worker.py, ``python -m libs.runtime.worker``)
  inherits the socket (the kernel hands each new connection to one of the
  processes accepting on it), opens its own database pool over the parent's
  database and serves every service's API (``Platform.join``): no migration,
  no relay, no consumer. ``/readyz`` runs its checks from the worker (its
  pool, the broker's address), so a dead broker or database fails it
  whichever worker answers.

What they share (libs/runtime/run_dir.py): the rate limits' counters and the
dev clock in files every process maps (one budget per client, one "now");
prometheus-client's multiprocess files (``/metrics`` of any worker merges
every process's samples); everything else lives in PostgreSQL already
(idempotency keys, the audit trail, the events).

Ctrl-C or SIGTERM: the parent stops the workers (SIGTERM: each finishes its
requests, as uvicorn does), then the background, and exits 0. The workers
run in their own session (a Ctrl-C at the terminal reaches the parent only)
and die with the parent even on ``kill -9`` (libs/embedded/children.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import multiprocess

from libs.embedded import children, supervisor
from libs.retry import exponential_backoff
from libs.runtime.heap import freeze_startup_heap
from libs.runtime.platform import Platform, print_banner, uvicorn_config
from libs.runtime.run_dir import METRICS_ENV, remove_run_dir, run_dir_for
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings

log = logging.getLogger(__name__)

#: How long a worker may take to finish its requests once told to stop.
STOP_TIMEOUT_S = 30.0
#: What a worker runs (``python -m``): also how tools tell a worker among
#: the platform's processes (bench/api.py's CPU split).
WORKER_MODULE = "libs.runtime.worker"
#: Connections of every worker's pool together (the background keeps its own 20):
#: well inside PostgreSQL's default max_connections of 100.
WORKER_CONNECTIONS = 60


def pool_size(workers: int) -> int:
    """Each worker's share of ``WORKER_CONNECTIONS``: at most the 20 of one process, at least 5."""
    return min(20, max(5, WORKER_CONNECTIONS // workers))


#: A worker that dies sooner than this after its start failed to start (the
#: database unreachable...): the next start waits, longer each time in a row.
QUICK_DEATH_S = 10.0
_START_BACKOFF = exponential_backoff(multiplier=0.5, max=30.0)


class HttpWorker:
    """One worker process; the supervisor's watcher restarts it when it dies."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], fd: int) -> None:
        self.argv, self.env, self.fd = list(argv), env, fd
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.quick_deaths = 0

    def spawn(self) -> None:
        self.started_at = time.monotonic()
        self.process = children.spawn(
            self.argv,
            death_signal=signal.SIGTERM,  # as a Ctrl-C: the worker stops, whatever killed the parent
            pass_fds=(self.fd,),
            env=self.env,
            start_new_session=True,  # the terminal's Ctrl-C goes to the parent, which stops the workers
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def respawn(self) -> None:
        if self.process is not None:
            log.warning("http worker %d exited with %s", self.process.pid, self.process.returncode)
            multiprocess.mark_process_dead(self.process.pid)  # its live gauges leave /metrics
        # Each start costs an interpreter's imports: no tight loop of them.
        quick = time.monotonic() - self.started_at < QUICK_DEATH_S
        self.quick_deaths = self.quick_deaths + 1 if quick else 0
        if self.quick_deaths:
            await asyncio.sleep(_START_BACKOFF(self.quick_deaths))
        self.spawn()

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float) -> None:
        """Until it exited (killed after ``timeout``); reaped either way."""
        if self.process is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout)
        except TimeoutError:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
        multiprocess.mark_process_dead(self.process.pid)


def worker_argv(
    fd: int, run_dir: Path, services: Sequence[ServiceDefinition], workers: int, log_format: str
) -> list[str]:
    names = [arg for service in services for arg in ("--service", service.name)]
    return [
        sys.executable, "-m", WORKER_MODULE, "--fd", str(fd), "--run-dir", str(run_dir),
        "--pool-size", str(pool_size(workers)), "--log-format", log_format, *names,
    ]


async def serve_with_workers(
    settings: Settings, services: Sequence[ServiceDefinition], workers: int, log_format: str
) -> None:
    """Until SIGINT or SIGTERM: the background here, the HTTP side in ``workers`` processes."""
    run_dir = run_dir_for(settings.data_dir)
    if os.environ.get(METRICS_ENV) != str(run_dir / "metrics"):
        raise RuntimeError("prepare_run_dir() must run before prometheus-client is imported (libs/cli.py up)")
    platform = await Platform.start(settings, services, run_dir)
    listener: socket.socket | None = None
    pool: list[HttpWorker] = []
    watchers: list[asyncio.Task] = []
    try:
        listener = uvicorn_config(None, settings).bind_socket()
        env = {
            **os.environ,
            # The parent's infrastructure, embedded or not: the workers start none.
            "BINOME_DATABASE_URL": platform.infrastructure.database_url,
            "BINOME_KAFKA_BOOTSTRAP": platform.infrastructure.bootstrap,
            # Named, they would end dev mode (Settings.in_dev_mode): the parent's decides.
            "BINOME_DEV_MODE": str(settings.in_dev_mode).lower(),
        }
        argv = worker_argv(listener.fileno(), run_dir, services, workers, log_format)
        pool = [HttpWorker(argv, env, listener.fileno()) for _ in range(workers)]
        for worker in pool:
            worker.spawn()
            watchers.append(asyncio.create_task(supervisor.watch("http worker", worker), name="http worker watcher"))
        print_banner(platform, workers)
        freeze_startup_heap()  # as one process does: the background's start-up heap is never walked again
        await _until_stopped()
    finally:
        for watcher in watchers:  # no restart while everything stops
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        for worker in pool:
            worker.stop()
        await asyncio.gather(*(worker.wait(STOP_TIMEOUT_S) for worker in pool))
        if listener is not None:
            listener.close()
        await platform.shutdown()
        remove_run_dir(run_dir)


async def _until_stopped() -> None:
    """Until SIGINT or SIGTERM (a second one, once stopping, interrupts at once)."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    log.info("stopping: the http workers first, then the background")
