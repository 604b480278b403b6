"""The platform's clock: the system clock, or (dev only) the system clock plus
an offset that only moves forward.

Every service reads "now" through ``ServiceContext.clock`` (sessions: "a
start strictly after now", evaluation: due dates, insights: pair health).
``binome demo`` simulates months of a programme in minutes by advancing the
platform clock with ``POST /v1/dev/clock:advance``, which the platform mounts
only when ``BINOME_DEV_CLOCK`` allows it (``binome up`` turns it on by
default when it runs the fully embedded stack; the offset is kept in
``<data_dir>/dev-clock``, so a restart does not go back). New events take their
``time`` from the same clock (``libs.events.envelope.event_clock``, set for
every request and worker of the platform), so facts and "now" agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.events.envelope import event_clock

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class PlatformClock:
    """The system clock plus an offset that only grows (thread-safe)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        if offset < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._offset = offset
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (> 0); returns the new now."""
        if delta <= timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += delta
        return self()

    def advance_to(self, when: datetime) -> datetime:
        """Move forward to ``when``; a time not after now is a ValueError."""
        with self._lock:
            delta = when - self()
            if delta <= timedelta(0):
                raise ValueError("the clock only moves forward")
            self._offset += delta
        return self()


def load_offset(path: Path) -> timedelta:
    """The dev clock's offset saved by an earlier run (zero if none)."""
    try:
        return timedelta(seconds=max(0.0, float(path.read_text().strip())))
    except (FileNotFoundError, ValueError):
        return timedelta(0)


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

    seconds: float | None = Field(None, gt=0, le=10 * 366 * 24 * 3600, description="Move forward by this much.")
    to: AwareDatetime | None = Field(None, description="Move forward to this instant (must be after now).")


class ClockOut(BaseModel):
    now: datetime
    offset_seconds: float


def clock_out(clock: PlatformClock) -> ClockOut:
    return ClockOut(now=clock(), offset_seconds=clock.offset.total_seconds())
