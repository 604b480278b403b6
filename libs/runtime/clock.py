"""The platform's clock: the system clock, or (dev only) the system clock plus
an offset that only moves forward.

Every service reads "now" through ``ServiceContext.clock`` (sessions: "a
start strictly after now", evaluation: due dates, insights: pair health).
``binome demo`` simulates months of a programme in minutes by advancing the
platform clock with ``POST /v1/dev/clock:advance``. New events take their
``time`` from the same clock (``libs.events.envelope.event_clock``, set for
every request and worker of the platform), so facts and "now" agree.

Moving "now" runs retention and due dates for every organisation at once, so
the clock is locked down (issue 14):

- it exists only in dev mode (``Settings.in_dev_mode``; ``BINOME_DEV_CLOCK``
  may turn it off there, never on elsewhere);
- only the ``dev_clock`` role reads or moves it (no HR or ops role);
- it is at most ``MAX_AHEAD`` (two years) ahead of the system clock, per call
  and in total, so every date it makes stays far inside the API's bounds;
- its offset is kept in ``<data_dir>/dev-clock`` for the next start of the
  same dev stack (facts already recorded are never ahead of "now"), read back
  within the same bound, and ignored outside dev mode. A fresh data dir, or
  deleting that file, starts from the system clock again.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.api.dates import Instant
from libs.events.envelope import event_clock
from libs.runtime.shared_file import SharedFile

Clock = Callable[[], datetime]

#: How far ahead of the system clock the dev clock may ever be.
MAX_AHEAD = timedelta(days=731)


def system_clock() -> datetime:
    return datetime.now(UTC)


class PlatformClock:
    """The system clock plus an offset that only grows, up to ``limit`` (thread-safe)."""

    def __init__(self, offset: timedelta = timedelta(0), limit: timedelta = MAX_AHEAD) -> None:
        if offset < timedelta(0):
            raise ValueError("the clock only moves forward")
        if offset > limit:
            raise ValueError(f"the clock may be at most {limit.days} days ahead")
        self._offset = offset
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (> 0); returns the new now."""
        with self._lock:
            self._move(delta)
        return self()

    def advance_to(self, when: datetime) -> datetime:
        """Move forward to ``when``; a time not after now, or past the limit, is a ValueError."""
        with self._lock:
            self._move(when - self())
        return self()

    def _move(self, delta: timedelta) -> None:
        if delta <= timedelta(0):
            raise ValueError("the clock only moves forward")
        if self._offset + delta > self._limit:
            room = max(timedelta(0), self._limit - self._offset)
            raise ValueError(
                f"the dev clock may be at most {self._limit.days} days ahead of the system clock; "
                f"{room.total_seconds():.0f} seconds left"
            )
        self._offset += delta


class SharedPlatformClock(PlatformClock):
    """The dev clock of ``binome up --workers N``: its offset lives in a file
    that the background process and every HTTP worker map
    (libs/runtime/shared_file.py), so an advance answered by one worker is
    "now" for all of them at once; advances are serialised by the file's lock.

    ``offset``: the offset saved by an earlier run; the shared one only grows.
    """

    _SECONDS = struct.Struct("<d")

    def __init__(self, path: Path, offset: timedelta = timedelta(0), limit: timedelta = MAX_AHEAD) -> None:
        self._shared = SharedFile(path, self._SECONDS.size)
        with self._shared.locked():
            super().__init__(offset, limit)
        self._lock = self._shared  # type: ignore[assignment]  # the lock of every process

    @property  # type: ignore[override]
    def _offset(self) -> timedelta:
        return timedelta(seconds=self._SECONDS.unpack_from(self._shared.map)[0])

    @_offset.setter
    def _offset(self, offset: timedelta) -> None:
        # Called with the file's lock held. Never back: a worker starting late
        # brings the offset saved on disk, which may be older than the shared one.
        memory = self._shared.map
        self._SECONDS.pack_into(memory, 0, max(self._SECONDS.unpack_from(memory)[0], offset.total_seconds()))


def load_offset(path: Path, limit: timedelta = MAX_AHEAD) -> timedelta:
    """The dev clock's offset saved by an earlier run (zero if none or
    unreadable), never more than ``limit``: an edited file cannot push "now"
    out of bounds."""
    try:
        seconds = float(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return timedelta(0)
    if not seconds > 0:  # negative, zero or nan
        return timedelta(0)
    return timedelta(seconds=min(seconds, limit.total_seconds()))


def save_offset(path: Path, offset: timedelta) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{offset.total_seconds()}\n")
    tmp.replace(path)


class EventClockScope:
    """ASGI middleware: events recorded while serving a request take their
    time from ``clock`` (``libs.events.envelope.event_clock``)."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app, self.clock = app, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = event_clock.set(self.clock)
        try:
            await self.app(scope, receive, send)
        finally:
            event_clock.reset(token)


# --------------------------------------------------------------------------- the dev endpoint


class AdvanceIn(BaseModel):
    """Exactly one of the two: how far, or until when."""

    model_config = ConfigDict(extra="forbid")

    seconds: float | None = Field(
        None, gt=0, le=MAX_AHEAD.total_seconds(), description="Move forward by this much (at most two years)."
    )
    to: Instant | None = Field(None, description="Move forward to this instant (after now, at most two years ahead).")


class ClockOut(BaseModel):
    now: datetime
    offset_seconds: float


def clock_out(clock: PlatformClock) -> ClockOut:
    return ClockOut(now=clock(), offset_seconds=clock.offset.total_seconds())
