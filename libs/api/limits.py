"""Abuse limits: request body size, per-client request rate, and failed
authentications per source.

* ``BodySizeLimit`` (ASGI middleware): a body over ``max_body_bytes`` gets a
  413 problem+json before the app reads it, whether the client announced its
  length or streams it.
* ``RateLimits``: each client (organisation + OAuth client id, or the token's
  subject for a user without one) may make ``rate_limit`` requests (a rate
  string such as ``"1200/minute"``); beyond it, 429 with ``Retry-After``.
  Checked in ``current_principal``, after the token is verified, so nobody
  spends another client's budget. One ``RateLimits`` serves every service of
  a platform (``binome up`` shares it), so a client has one budget, not one
  per service. Failed authentications (no token, bad token) count against
  the source address: past ``auth_failure_limit`` of them, that source's
  failures get 429 instead of 401 (valid tokens from the same address, an
  office behind one NAT, still pass).
* Counting: a sliding window counter (the previous window's count weighted by
  how much of it still overlaps, two counters per key). ``memory://`` counts
  in this process with ``LocalWindow`` (no timer thread: the ``limits``
  library's memory storage re-arms a ``threading.Timer`` every 10 ms while
  keys live, a hot spot under load); another storage URI (``redis://...``)
  shares the counters between API replicas through the ``limits`` library.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from limits import RateLimitItem, parse, storage, strategies
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.api.problems import Problem, problem_response
from libs.asgi import ResponseStatus
from libs.auth.principal import Principal
from libs.settings import Settings


class Budget(Protocol):
    def hit(self, key: str) -> bool:
        """Count one request of ``key``; False when it is over the limit."""

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may try again."""


class LocalWindow:
    """A sliding window counter in this process's memory, without threads.

    Per key: the count of the current fixed window and of the previous one;
    a hit is allowed while ``previous * (1 - elapsed/period) + current < amount``.
    Keys two windows old are swept on a hit, at most once per period.
    """

    def __init__(self, item: RateLimitItem, clock: Callable[[], float] = time.monotonic) -> None:
        self.amount, self.period = item.amount, float(item.get_expiry())
        self.clock = clock
        self._counts: dict[str, tuple[int, int, int]] = {}  # key -> (window, previous, current)
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def _state(self, key: str, now: float) -> tuple[int, int, int]:
        window = int(now // self.period)
        seen, previous, current = self._counts.get(key, (window, 0, 0))
        if seen == window - 1:
            return window, current, 0
        if seen != window:
            return window, 0, 0
        return window, previous, current

    def _estimate(self, now: float, previous: int, current: int) -> float:
        overlap = 1.0 - (now % self.period) / self.period
        return previous * overlap + current

    def hit(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            window, previous, current = self._state(key, now)
            if self._estimate(now, previous, current) + 1 > self.amount:
                self._counts[key] = (window, previous, current)
                return False
            self._counts[key] = (window, previous, current + 1)
            return True

    def retry_after(self, key: str) -> int:
        now = self.clock()
        with self._lock:
            _, previous, current = self._state(key, now)
        if current + 1 > self.amount or previous == 0:
            # Only the next window frees this one's count.
            return max(1, math.ceil(self.period - now % self.period))
        # The previous window's weight falls linearly: wait until one request fits.
        needed = (previous + current + 1 - self.amount) / previous  # fraction of the period
        return max(1, math.ceil(needed * self.period - now % self.period))

    def _sweep(self, now: float) -> None:
        window = int(now // self.period)
        self._counts = {k: v for k, v in self._counts.items() if v[0] >= window - 1}
        self._next_sweep = now + self.period


class SharedWindow:
    """The same algorithm in a ``limits`` storage shared by replicas (Redis...)."""

    def __init__(self, item: RateLimitItem, storage_uri: str) -> None:
        self.item = item
        self.limiter = strategies.SlidingWindowCounterRateLimiter(storage.storage_from_string(storage_uri))

    def hit(self, key: str) -> bool:
        return self.limiter.hit(self.item, key)

    def retry_after(self, key: str) -> int:
        reset_at = self.limiter.get_window_stats(self.item, key).reset_time
        return max(1, math.ceil(reset_at - time.time()))


def budget(rate: str, storage_uri: str) -> Budget:
    item = parse(rate)
    return LocalWindow(item) if storage_uri.startswith("memory://") else SharedWindow(item, storage_uri)


class RateLimits:
    def __init__(self, rate: str, storage_uri: str = "memory://", auth_failure_rate: str = "60/minute") -> None:
        self.rate, self.auth_failure_rate = rate, auth_failure_rate
        self.clients = budget(rate, storage_uri)
        self.failures = budget(auth_failure_rate, storage_uri)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(settings.rate_limit, settings.rate_limit_storage, settings.auth_failure_limit)

    @staticmethod
    def key_of(principal: Principal) -> str:
        return f"{principal.organisation}:{principal.client_id or principal.subject}"

    def check(self, principal: Principal) -> None:
        """Count one request of ``principal``'s client; 429 when over the limit."""
        key = self.key_of(principal)
        if self.clients.hit(key):
            return
        raise Problem(
            429,
            detail=f"Too many requests from this client: at most {self.rate} per client.",
            headers={"Retry-After": str(self.clients.retry_after(key))},
        )

    def failed_authentication(self, source: str) -> None:
        """Count one failed authentication of ``source``; 429 when over the limit."""
        key = f"auth-failure:{source}"
        if self.failures.hit(key):
            return
        raise Problem(
            429,
            detail=f"Too many failed authentications from this address: at most {self.auth_failure_rate}.",
            headers={"Retry-After": str(self.failures.retry_after(key))},
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
