"""Abuse limits: request body size and per-client request rate.

* ``BodySizeLimit`` (ASGI middleware): a body over ``max_body_bytes`` gets a
  413 problem+json before the app reads it, whether the client announced its
  length or streams it.
* ``RateLimits``: each client (organisation + OAuth client id, or the token's
  subject for a user without one) may make ``rate_limit`` requests (a
  ``limits`` library rate string such as ``"1200/minute"``, sliding window
  counter); beyond it, 429 with ``Retry-After``. Checked in ``current_principal``, after
  the token is verified, so nobody spends another client's budget. The
  counters live in ``rate_limit_storage``: ``memory://`` counts per service app
  (``ServiceDefinition.build_app`` gives each its own) in each process;
  ``redis://host:6379`` shares them between API replicas.
"""

from __future__ import annotations

import math
import time

from limits import parse, storage, strategies
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.api.problems import Problem, problem_response
from libs.asgi import ResponseStatus
from libs.auth.principal import Principal


class RateLimits:
    def __init__(self, rate: str, storage_uri: str = "memory://") -> None:
        self.item = parse(rate)
        # A sliding window counter (two counters per client, the previous
        # window's weighted by how much of it still overlaps) rather than a
        # moving window (one timestamp per request): the in-memory storage
        # sweeps its expired entries every 10 ms in a thread, and with a
        # thousand clients sweeping the moving window's lists took 6 % of the
        # platform's CPU during `binome demo`.
        self.limiter = strategies.SlidingWindowCounterRateLimiter(storage.storage_from_string(storage_uri))

    @staticmethod
    def key_of(principal: Principal) -> str:
        return f"{principal.organisation}:{principal.client_id or principal.subject}"

    def check(self, principal: Principal) -> None:
        """Count one request of ``principal``'s client; 429 when over the limit."""
        key = self.key_of(principal)
        if self.limiter.hit(self.item, key):
            return
        reset_at = self.limiter.get_window_stats(self.item, key).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise Problem(
            429,
            detail=f"Too many requests from this client: at most {self.item} per client.",
            headers={"Retry-After": str(retry_after)},
        )


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        response = ResponseStatus(send)

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, response.send)
        except BodyTooLarge:
            if response.started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(413, detail=f"The request body is larger than {self.max_bytes} bytes.")
        await problem_response(problem)(scope, receive, send)
