"""What an HTTP worker read from the read tables, held until they may have changed.

Why: at a worker's pace, a read's round trip to PostgreSQL costs more than
its Python (two processes woken on a virtual machine: bench/README.md,
"Seventh pass"). The page of 50 participants cost 1.0-1.2 ms of a worker's
CPU over HTTP at 200/s with its statement, 0.8-0.9 without ("Ninth pass").

A held read (a page of a list, a document's row, a dashboard) is answered
again only while nothing it was read from may have changed since it was
read. "May have changed" is a moment (``TableChanges.moment``) made of two
counters:

* **the host's**, in a file every HTTP worker of ``binome up --workers N``
  maps (libs/runtime/shared_file.py): each worker adds one when it answers a
  request that may write (any method but GET, HEAD and OPTIONS:
  ``AnnouncedWrites``), after the write committed and before the client
  hears of it. So a read that follows a write's answer, whatever worker
  answers either, never gets anything older than the write;
* **this worker's**, one more for each notification PostgreSQL sends on
  ``CHANNEL``: the read tables' triggers send one for a write from any other
  connection (the background process's consumers and schedulers,
  ``binome replay``, a console; libs/eventstore/migrations/0008 and the
  services' migrations that put the triggers on their tables), at its
  commit. The HTTP workers' own connections say they announce their writes
  themselves (``ANNOUNCES``), so their commits take no NOTIFY (PostgreSQL
  serialises the commits of transactions that NOTIFY: libs/eventstore/
  store.py, ``_wake_relay``) and no worker is woken by every write. Nothing
  is held while this worker is not listening: not before its ``LISTEN`` is
  in place, nor from the moment its connection is lost until it is back
  (the counter moves both times).

And a read is held ``max_age_s`` at most whatever happens
(``BINOME_HELD_READS_S``; 0: nothing is held): the bound for the one writer
neither counter sees, API replicas on other hosts over the same database.
A read is held only if ``holdable`` says so (the participants list holds no
page with an erased person: the erasure's progress lives in the key vault,
whose changes nobody announces; nothing holds "not found").

What a worker holds leaves its memory when the moment moves (at the next
read asked) or, in a quiet worker, at the next sweep (``keep_fresh``, every
``max_age_s``): an erased person's data does not linger in memory longer
than twice the reads' lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tenacity import RetryCallState, RetryError

from libs.auth.principal import Principal
from libs.observability.metrics import HELD_READS
from libs.retry import sleep_unless_stopped, until_stopped
from libs.runtime.shared_file import SharedFile

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What the read tables' triggers notify on (the payload: their schema).
CHANNEL = "binome_read_tables"
#: The session setting of a connection whose writes are announced by its
#: process (``AnnouncedWrites``), not by a NOTIFY in their transaction.
ANNOUNCES = "binome.announces_changes"
#: Methods that never write: their answers announce nothing.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Reads one worker holds at most (a page of 50 participants is about 80 kB).
MAX_HELD = 128

_COUNT = struct.Struct("<Q")
_ANSWERED_HELD, _READ = HELD_READS.labels("held"), HELD_READS.labels("read")


class ListenerLost(ConnectionError):
    """The connection that listened for changes closed."""


class TableChanges:
    """The moment of the read tables, as this process knows it.

    ``shared``: the host's counter (``binome up --workers N``); None: this
    process's own (one process serves every request).
    """

    #: The bytes of the host's counter in its shared file.
    SHARED_SIZE = _COUNT.size

    def __init__(self, shared: SharedFile | None = None) -> None:
        self._shared = shared
        self._announced = 0  # the host's counter when there is no shared file
        self._heard = 0
        self.listening = False

    def moment(self) -> tuple[int, int] | None:
        """Where the counters stand; None while this process is not listening
        (a change could then go unheard: nothing may be held)."""
        if not self.listening:
            return None
        return self._host(), self._heard

    def announce(self) -> None:
        """A write this process made has committed (or may have)."""
        if self._shared is None:
            self._announced += 1
            return
        with self._shared.locked() as memory:
            _COUNT.pack_into(memory, 0, _COUNT.unpack_from(memory)[0] + 1)

    def heard(self, *_notification: Any) -> None:
        """An asyncpg listener: a read table changed."""
        self._heard += 1

    def _host(self) -> int:
        # Read without the lock: the counter only grows, and a torn read can
        # only make a moment that matches nothing held (a miss, never a stale hit).
        return self._announced if self._shared is None else _COUNT.unpack_from(self._shared.map)[0]

    def _set_listening(self, listening: bool) -> None:
        # Either way, a new moment: what was read before cannot be trusted after.
        self._heard += 1
        self.listening = listening

    async def listen(self, connect: Callable[[], Awaitable[asyncpg.Connection]], stop: asyncio.Event) -> None:
        """Listen on ``CHANNEL`` until ``stop``; a lost connection is opened
        again (with backoff), holding nothing meanwhile."""
        retrying = until_stopped(stop, before_sleep=_log_lost, multiplier=0.2, max=5.0)
        with contextlib.suppress(RetryError):
            await retrying(self._listen_once, connect, stop)

    async def _listen_once(self, connect: Callable[[], Awaitable[asyncpg.Connection]], stop: asyncio.Event) -> None:
        conn = await connect()
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self.heard)
            self._set_listening(True)
            ended = [asyncio.ensure_future(lost.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in ended:
                    waiter.cancel()
            if not stop.is_set():
                raise ListenerLost("the connection listening for read table changes closed")
        finally:
            if self.listening:
                self._set_listening(False)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=1)


def _log_lost(state: RetryCallState) -> None:
    assert state.outcome is not None
    log.warning(
        "held reads: not listening for read table changes (%s); nothing is held until it listens again",
        state.outcome.exception(),
    )


@dataclass
class _Held(Generic[T]):
    at: float
    value: T


class HeldReads:
    """``read(key, read, holdable)``: what ``read()`` gives, held under ``key``
    while ``changes`` stays at the moment it was read and for ``max_age_s``
    at most (the least recently used go first past ``max_held``)."""

    def __init__(
        self,
        changes: TableChanges,
        max_age_s: float,
        max_held: int = MAX_HELD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.changes, self.max_age_s, self.max_held, self.clock = changes, max_age_s, max_held, clock
        self._held: OrderedDict[Hashable, _Held[Any]] = OrderedDict()
        self._moment: tuple[int, int] | None = None  # of everything held

    async def read(self, key: Hashable, read: Callable[[], Awaitable[T]], holdable: Callable[[T], bool]) -> T:
        # The moment before the read: a change committed while it runs moves
        # the counters past it, so what it returns is never answered again.
        moment = self.changes.moment()
        if moment is None or self.max_age_s <= 0:
            return await read()
        if moment != self._moment:  # everything held is of an older moment
            self._held.clear()
            self._moment = moment
        now = self.clock()
        held = self._held.get(key)
        if held is not None and now - held.at < self.max_age_s:
            self._held.move_to_end(key)
            _ANSWERED_HELD.inc()
            return held.value  # type: ignore[no-any-return]
        _READ.inc()
        value = await read()
        if holdable(value) and moment == self._moment:
            self._held[key] = _Held(now, value)
            self._held.move_to_end(key)
            while len(self._held) > self.max_held:
                self._held.popitem(last=False)
        else:
            self._held.pop(key, None)
        return value

    def sweep(self) -> None:
        """Drop what may not be answered again (too old, or of an older moment)."""
        if self.changes.moment() != self._moment:
            self._held.clear()
            return
        now = self.clock()
        for key in [k for k, held in self._held.items() if now - held.at >= self.max_age_s]:
            del self._held[key]

    async def keep_fresh(self, stop: asyncio.Event) -> None:
        """``sweep`` every ``max_age_s`` until ``stop``."""
        while not stop.is_set():
            await sleep_unless_stopped(stop, self.max_age_s)
            self.sweep()

    def __len__(self) -> int:
        return len(self._held)


class NothingHeld:
    """``HeldReads``' interface for an app that holds nothing (one process,
    a service's app alone in tests): every read goes to the database."""

    async def read(self, key: Hashable, read: Callable[[], Awaitable[T]], holdable: Callable[[T], bool]) -> T:
        return await read()


#: What holds nothing (it keeps no state: one serves everywhere).
NOTHING_HELD = NothingHeld()


def seen_by(principal: Principal) -> Hashable:
    """Whose reads are alike, as part of a key: the principal's organisation
    and the countries it sees (None: all of them)."""
    return principal.organisation, None if principal.sees_all_countries() else principal.countries


class AnnouncedWrites:
    """ASGI middleware: after a request that may write, ``changes.announce()``
    (when its answer starts, the transaction having committed, and again
    when it ends, whether or not an answer went out: a request cancelled
    after its commit still moves the counter)."""

    def __init__(self, app: ASGIApp, changes: TableChanges) -> None:
        self.app, self.changes = app, changes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        changes = self.changes

        async def announcing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                changes.announce()
            await send(message)

        try:
            await self.app(scope, receive, announcing_send)
        finally:
            changes.announce()
