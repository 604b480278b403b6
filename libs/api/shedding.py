"""Overload is shed, not queued; a request nobody waits for is cancelled.

``LoadShedding`` (pure ASGI, the outermost middleware of every service app)
keeps two promises:

1. **At most ``limit`` requests run at once per service**
   (``BINOME_MAX_CONCURRENT_REQUESTS``). One more is answered at once with
   503 problem+json and ``Retry-After``: under twice the load a service can
   carry, the requests it accepts still finish in time, instead of every
   request waiting behind a queue that only grows (and timing out anyway).
   /healthz, /readyz and /metrics are never shed: probes must see the truth.
2. **A request whose client disconnected is cancelled.** Once the body is
   read, the next message the server can send is ``http.disconnect``; a
   watcher waits for it and cancels the handler (it sees ``CancelledError``:
   its transaction rolls back, its connection goes back to the pool), so
   work nobody will read stops taking a slot, a connection and CPU.

Both are counted: ``binome_http_requests_shed_total`` and
``binome_http_requests_cancelled_total``.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.api.problems import Problem, problem_response
from libs.observability.metrics import HTTP_REQUESTS_CANCELLED, HTTP_REQUESTS_SHED

OVERLOADED = "urn:binome:problem:overloaded"
#: Paths (relative to the service app) that are never shed.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_S = 1


def app_path(scope: Scope) -> str:
    """The path inside the app, without the prefix it is mounted under."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class LoadShedding:
    def __init__(self, app: ASGIApp, service: str, limit: int) -> None:
        self.app = app
        self.service = service
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or app_path(scope) in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            HTTP_REQUESTS_SHED.labels(self.service).inc()
            await self._shed(scope, receive, send)
            return
        self.in_flight += 1  # no await since the check: no other request slipped in
        try:
            await _CancelOnDisconnect(self.app, self.service)(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _shed(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(
            503,
            detail=f"The {self.service} service is at its limit of {self.limit} requests at once; retry shortly.",
            type=OVERLOADED,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
        await problem_response(problem)(scope, receive, send)


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
            if self.watcher is not None:
                self.watcher.cancel()

    async def _note(self, message: Message, receive: Receive, task: asyncio.Task) -> Message:
        """Note where the request stands after ``message``; watch once the body is complete."""
        if message["type"] == "http.disconnect":
            self.body_complete = True
            self.disconnected.set()
        elif not message.get("more_body", False) and not self.body_complete:
            self.body_complete = True
            self.watcher = asyncio.create_task(self._watch(receive, task))
        return message

    async def _watch(self, receive: Receive, task: asyncio.Task) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()
        if not self.responded:
            self.cancelled = True
            task.cancel()
