"""One HTTP worker of ``binome up --workers N`` (libs/runtime/workers.py).

    python -m libs.runtime.worker --fd 5 --run-dir <data_dir>/run/<pid> [--service NAME ...]

Started by ``binome up`` only: it serves every service's API on the listening
socket it inherits (file descriptor ``--fd``), over the database and broker
named by its environment (the parent's), sharing rate limits, the dev clock
and metrics through ``--run-dir``. SIGTERM or SIGINT: it finishes the
requests in flight and exits 0.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.api.held_reads import AnnouncedWrites
from libs.observability.logging import configure_logging
from libs.runtime import loop
from libs.runtime.heap import freeze_startup_heap
from libs.runtime.platform import Platform, _Server, select_services, uvicorn_config
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings, get_settings

#: Defined here, not in libs/observability/metrics.py, so that only worker
#: processes have a series (an unlabelled gauge gets one in each process that
#: imports it, and the parent serves no request).
HTTP_WORKER_REQUESTS = Gauge(
    "binome_http_worker_requests",
    "Requests answered by each HTTP worker process of `binome up --workers N` (label pid: one series per live "
    "worker); how evenly the workers share the load.",
    multiprocess_mode="liveall",
)


#: Dev mode only: the pid of the worker that answered (tests see the load spread).
WORKER_HEADER = b"binome-worker"


class CountedByWorker:
    """ASGI middleware: each request counts in ``binome_http_worker_requests``
    (one series per worker pid in /metrics): how the kernel spreads the load.
    In dev mode each response also names its worker (``binome-worker: <pid>``);
    never elsewhere, where a pid tells a prober nothing it should know."""

    def __init__(self, app: ASGIApp, name_worker: bool) -> None:
        self.app = app
        self.header = (WORKER_HEADER, str(os.getpid()).encode()) if name_worker else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        HTTP_WORKER_REQUESTS.inc()
        if self.header is None:
            await self.app(scope, receive, send)
            return
        header = self.header

        async def naming_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, naming_send)


async def serve_worker(
    settings: Settings, services: Sequence[ServiceDefinition], listener: socket.socket, run_dir: Path, pool_size: int
) -> None:
    platform = await Platform.join(settings, services, run_dir, pool_size)
    try:
        assert platform.table_changes is not None
        app = AnnouncedWrites(CountedByWorker(platform.http_app(), settings.in_dev_mode), platform.table_changes)
        server = _Server(uvicorn_config(app, settings))
        freeze_startup_heap()
        await server.serve(sockets=[listener])
    finally:
        await platform.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m libs.runtime.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--log-format", default="auto")
    parser.add_argument("--service", action="append", default=[])
    args = parser.parse_args(argv)
    configure_logging(args.log_format)
    from services import SERVICES

    services = select_services(SERVICES, args.service)
    listener = socket.socket(fileno=args.fd)
    loop.run(serve_worker(get_settings(), services, listener, args.run_dir, args.pool_size))  # uvloop, as `binome up`


if __name__ == "__main__":
    main()
