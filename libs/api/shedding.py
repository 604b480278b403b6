"""Overload is shed, not queued; a request nobody waits for is cancelled.

``LoadShedding`` (pure ASGI, the outermost middleware of every service app)
keeps two promises:

1. **At most ``limit`` requests run at once per service**
   (``BINOME_MAX_CONCURRENT_REQUESTS``). One more is answered at once with
   503 problem+json and ``Retry-After``: under twice the load a service can
   carry, the requests it accepts still finish in time, instead of every
   request waiting behind a queue that only grows (and timing out anyway).
   /healthz, /readyz and /metrics are never shed: probes must see the truth.
   The count is per process: under ``binome up --workers N`` each worker
   admits ``limit`` per service, N times as many on N cores, which is the
   point (a shared count would cost a cross-process lock per request).
2. **A request whose client disconnected is cancelled.** Once the body is
   read, the next message the server can send is ``http.disconnect``; a
   watcher waits for it and cancels the handler (it sees ``CancelledError``:
   its transaction rolls back, its connection goes back to the pool), so
   work nobody will read stops taking a slot, a connection and CPU.
   The watcher starts only once a request has run ``WATCH_AFTER_S``: most
   requests are answered sooner, and a task per request (started, then
   cancelled) was a tenth of a simple read's CPU; a client gone earlier is
   noticed then.

Both are counted: ``binome_http_requests_shed_total`` and
``binome_http_requests_cancelled_total``.

A shed request must cost next to nothing, or shedding itself eats the
capacity it protects (bench/api.py: at twice the saturating rate, most
requests are shed). The 503 is encoded once per service, and ``binome up``
also puts ``ShedEarly`` in front of the whole platform: it refuses a request
for a full service before the platform's own middlewares and router run.
The service's ``LoadShedding`` stays the authority that takes the slots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.api.problems import PROBLEM_JSON, Problem
from libs.asgi import app_path
from libs.observability.metrics import HTTP_REQUESTS_CANCELLED, HTTP_REQUESTS_SHED

OVERLOADED = "urn:binome:problem:overloaded"
#: Paths (relative to the service app) that are never shed.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_S = 1
#: How long a request runs before a watcher waits for its client's disconnect.
WATCH_AFTER_S = 0.05


@dataclass
class InFlight:
    """The requests a service runs now, against its bound (shared by its two guards)."""

    service: str
    limit: int
    count: int = 0
    #: The 503 answered beyond the bound, encoded once.
    refusal: bytes = field(init=False)

    def __post_init__(self) -> None:
        problem = Problem(
            503,
            detail=f"The {self.service} service is at its limit of {self.limit} requests at once; retry shortly.",
            type=OVERLOADED,
        )
        self.refusal = orjson.dumps(problem.to_dict())

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    async def refuse(self, send: Send) -> None:
        HTTP_REQUESTS_SHED.labels(self.service).inc()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(self.refusal)).encode()),
                    (b"retry-after", str(RETRY_AFTER_S).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.refusal})


class LoadShedding:
    """The bound and the cancellation, as the outermost middleware of a service app."""

    def __init__(self, app: ASGIApp, slots: InFlight) -> None:
        self.app = app
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or app_path(scope) in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        slots = self.slots
        if slots.full:
            await slots.refuse(send)
            return
        slots.count += 1  # no await since the check: no other request slipped in
        try:
            await _CancelOnDisconnect(self.app, slots.service)(scope, receive, send)
        finally:
            slots.count -= 1


class ShedEarly:
    """In front of a whole platform: refuse a request for a full service at once.

    ``services`` maps a mount prefix (``/enrollment``) to that service's
    ``InFlight``. Requests that pass go on to the service's ``LoadShedding``.
    """

    def __init__(self, app: ASGIApp, services: Mapping[str, InFlight]) -> None:
        self.app = app
        self.services = dict(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            prefix, _, rest = scope["path"][1:].partition("/")
            slots = self.services.get("/" + prefix)
            if slots is not None and slots.full and "/" + rest not in OPS_PATHS:
                await slots.refuse(send)
                return
        await self.app(scope, receive, send)


class _CancelOnDisconnect:
    """One request: run the app, cancel it if the client goes away first.

    The app and the watcher never wait on the server's ``receive`` at the
    same time: the watcher starts only once the body is complete, and from
    then on the app's ``receive`` waits for the watcher's news instead.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self.body_complete = False
        self.disconnected = asyncio.Event()
        self.responded = False
        self.cancelled = False
        self.watcher: asyncio.Task | None = None
        self.watch_later: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        pending: list[Message] = [await self._note(await receive(), receive, task)]

        async def app_receive() -> Message:
            if pending:
                return pending.pop()
            if self.body_complete:
                await self.disconnected.wait()
                return {"type": "http.disconnect"}
            return await self._note(await receive(), receive, task)

        async def app_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.responded = True
            await send(message)

        try:
            if not self.disconnected.is_set():
                await self.app(scope, app_receive, app_send)
            else:
                HTTP_REQUESTS_CANCELLED.labels(self.service).inc()  # gone before it started
        except asyncio.CancelledError:
            if not self.cancelled:
                raise  # the server is shutting down: not ours to swallow
            task.uncancel()
            HTTP_REQUESTS_CANCELLED.labels(self.service).inc()
        finally:
            if self.watch_later is not None:
                self.watch_later.cancel()
            if self.watcher is not None:
                self.watcher.cancel()

    async def _note(self, message: Message, receive: Receive, task: asyncio.Task) -> Message:
        """Note where the request stands after ``message``; watch once the body is complete."""
        if message["type"] == "http.disconnect":
            self.body_complete = True
            self.disconnected.set()
        elif not message.get("more_body", False) and not self.body_complete:
            self.body_complete = True
            self.watch_later = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._start_watch, receive, task)
        return message

    def _start_watch(self, receive: Receive, task: asyncio.Task) -> None:
        self.watch_later = None
        if not self.responded:
            self.watcher = asyncio.create_task(self._watch(receive, task))

    async def _watch(self, receive: Receive, task: asyncio.Task) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()
        if not self.responded:
            self.cancelled = True
            task.cancel()
