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
  keys live, a hot spot under load). ``binome up --workers N`` (N > 1) keeps
  the ``memory://`` counters in a file its HTTP workers all map
  (``HostWindow``): one budget per client on the host, whatever worker
  answers. Another storage URI (``redis://...``) shares the counters between
  API replicas on several hosts through the ``limits`` library.
"""

from __future__ import annotations

import hashlib
import logging
import math
import mmap
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from limits import RateLimitItem, parse, storage, strategies
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.api.problems import Problem, problem_response
from libs.asgi import ResponseStatus
from libs.auth.principal import Principal
from libs.runtime.shared_file import SharedFile
from libs.settings import Settings

log = logging.getLogger(__name__)


class Budget(Protocol):
    def hit(self, key: str) -> bool:
        """Count one request of ``key``; False when it is over the limit."""

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may try again."""


class SlidingWindow:
    """The sliding window counter's arithmetic, whatever keeps the counts.

    Per key: the count of the current fixed window and of the previous one;
    a hit is allowed while ``previous * (1 - elapsed/period) + current < amount``.
    """

    def __init__(self, item: RateLimitItem, clock: Callable[[], float] = time.monotonic) -> None:
        self.amount, self.period = item.amount, float(item.get_expiry())
        self.clock = clock

    def _roll(self, stored: tuple[int, int, int] | None, now: float) -> tuple[int, int, int]:
        """(window, previous, current) at ``now`` from what was stored (window, previous, current)."""
        window = int(now // self.period)
        seen, previous, current = stored or (window, 0, 0)
        if seen == window - 1:
            return window, current, 0
        if seen != window:
            return window, 0, 0
        return window, previous, current

    def _allows(self, now: float, previous: int, current: int) -> bool:
        overlap = 1.0 - (now % self.period) / self.period
        return previous * overlap + current + 1 <= self.amount

    def _retry_after(self, now: float, previous: int, current: int) -> int:
        if current + 1 > self.amount or previous == 0:
            # Only the next window frees this one's count.
            return max(1, math.ceil(self.period - now % self.period))
        # The previous window's weight falls linearly: wait until one request fits.
        needed = (previous + current + 1 - self.amount) / previous  # fraction of the period
        return max(1, math.ceil(needed * self.period - now % self.period))


class LocalWindow(SlidingWindow):
    """A sliding window counter in this process's memory, without threads.

    Keys two windows old are swept on a hit, at most once per period.
    """

    def __init__(self, item: RateLimitItem, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(item, clock)
        self._counts: dict[str, tuple[int, int, int]] = {}  # key -> (window, previous, current)
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def hit(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            window, previous, current = self._roll(self._counts.get(key), now)
            allowed = self._allows(now, previous, current)
            self._counts[key] = (window, previous, current + allowed)
            return allowed

    def retry_after(self, key: str) -> int:
        now = self.clock()
        with self._lock:
            _, previous, current = self._roll(self._counts.get(key), now)
        return self._retry_after(now, previous, current)

    def _sweep(self, now: float) -> None:
        window = int(now // self.period)
        self._counts = {k: v for k, v in self._counts.items() if v[0] >= window - 1}
        self._next_sweep = now + self.period


#: One slot of ``HostWindow``'s table: key hash (0: never used), window, previous, current.
_SLOT = struct.Struct("<QqII")


class HostWindow(SlidingWindow):
    """The same counter shared by the processes of one host: ``binome up
    --workers N`` (libs/runtime/workers.py) gives a client one budget, whatever
    worker answers.

    The counts live in an open-addressing table (``slots`` slots, keys by a
    64-bit hash, at most ``PROBES`` probes) in a file every worker maps
    (libs/runtime/shared_file.py); a hit is a few memory reads and one write
    under the file's lock: microseconds, where a round trip to PostgreSQL
    would cost a query per request. A slot whose counts are two windows old
    is reused. Should every slot a key may take be live (more live keys
    around it than the table holds), that key is counted in this process
    only (``LocalWindow``) and a warning is logged once.
    """

    PROBES = 32

    def __init__(
        self, item: RateLimitItem, path: Path, slots: int = 1 << 16, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(item, clock)
        self.slots = slots
        self.shared = SharedFile(path, slots * _SLOT.size)
        self.overflow = LocalWindow(item, clock)
        self._warned = False

    @staticmethod
    def _hash(key: str) -> int:
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1

    def _find(self, memory: mmap.mmap, key_hash: int, window: int) -> tuple[int | None, tuple[int, int, int] | None]:
        """(slot offset, stored counts) of the key; (a free slot's offset, None)
        if it has none; (None, None) if no slot is free within ``PROBES``."""
        free = None
        start = key_hash % self.slots
        for probe in range(self.PROBES):
            offset = (start + probe) % self.slots * _SLOT.size
            seen, seen_window, previous, current = _SLOT.unpack_from(memory, offset)
            if seen == key_hash:
                return offset, (seen_window, previous, current)
            if seen == 0:  # the end of the chain: slots are never emptied
                return (offset if free is None else free), None
            if free is None and seen_window < window - 1:
                free = offset
        return free, None

    def hit(self, key: str) -> bool:
        now, key_hash = self.clock(), self._hash(key)
        with self.shared.locked() as memory:
            offset, stored = self._find(memory, key_hash, int(now // self.period))
            if offset is not None:
                window, previous, current = self._roll(stored, now)
                allowed = self._allows(now, previous, current)
                _SLOT.pack_into(memory, offset, key_hash, window, previous, current + allowed)
                return allowed
        if not self._warned:
            self._warned = True
            log.warning("rate limits: the shared table is full around a key; counting it in this worker only")
        return self.overflow.hit(key)

    def retry_after(self, key: str) -> int:
        now, key_hash = self.clock(), self._hash(key)
        with self.shared.locked() as memory:
            offset, stored = self._find(memory, key_hash, int(now // self.period))
        if offset is None:
            return self.overflow.retry_after(key)
        _, previous, current = self._roll(stored, now)
        return self._retry_after(now, previous, current)


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


def budget(rate: str, storage_uri: str, shared: Path | None = None) -> Budget:
    """``rate`` counted in ``storage_uri``; ``memory://`` with a ``shared`` file:
    in that file, for every process of this host."""
    item = parse(rate)
    if not storage_uri.startswith("memory://"):
        return SharedWindow(item, storage_uri)
    return LocalWindow(item) if shared is None else HostWindow(item, shared)


class RateLimits:
    def __init__(
        self,
        rate: str,
        storage_uri: str = "memory://",
        auth_failure_rate: str = "60/minute",
        shared_dir: Path | None = None,
    ) -> None:
        """``shared_dir``: the run directory of a platform whose HTTP workers
        share ``memory://`` budgets (``binome up --workers N``)."""
        self.rate, self.auth_failure_rate = rate, auth_failure_rate
        self.clients = budget(rate, storage_uri, shared_dir and shared_dir / "rate-limit-clients")
        self.failures = budget(auth_failure_rate, storage_uri, shared_dir and shared_dir / "rate-limit-auth-failures")

    @classmethod
    def from_settings(cls, settings: Settings, shared_dir: Path | None = None) -> RateLimits:
        return cls(settings.rate_limit, settings.rate_limit_storage, settings.auth_failure_limit, shared_dir)

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
