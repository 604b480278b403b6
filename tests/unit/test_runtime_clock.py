"""The platform's clock (libs/runtime/clock.py): forward only, kept across restarts,
and the time new events take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.events.envelope import Envelope, event_clock
from libs.runtime.clock import MAX_AHEAD, PlatformClock, load_offset, save_offset


def test_the_clock_only_moves_forward() -> None:
    clock = PlatformClock()
    before = clock()
    after = clock.advance(timedelta(days=7))
    assert after - before >= timedelta(days=7) and clock.offset == timedelta(days=7)
    for delta in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(ValueError):
            clock.advance(delta)
    with pytest.raises(ValueError):
        clock.advance_to(before)
    target = clock() + timedelta(days=30)
    assert clock.advance_to(target) >= target
    with pytest.raises(ValueError):
        PlatformClock(timedelta(seconds=-1))


def test_the_clock_is_never_more_than_two_years_ahead() -> None:
    clock = PlatformClock()
    with pytest.raises(ValueError, match="at most 731 days"):
        clock.advance(MAX_AHEAD + timedelta(seconds=1))
    clock.advance(timedelta(days=400))
    with pytest.raises(ValueError, match="seconds left"):
        clock.advance(timedelta(days=400))
    with pytest.raises(ValueError):
        clock.advance_to(datetime.now(UTC) + timedelta(days=800))
    assert clock.offset == timedelta(days=400)
    assert clock.advance(MAX_AHEAD - timedelta(days=400)) and clock.offset == MAX_AHEAD
    with pytest.raises(ValueError):
        PlatformClock(MAX_AHEAD + timedelta(seconds=1))


def test_a_saved_offset_is_read_back_within_the_bound(tmp_path) -> None:
    path = tmp_path / "dev-clock"
    for text, expected in (("1e12", MAX_AHEAD), ("inf", MAX_AHEAD), ("nan", timedelta(0)), ("-5", timedelta(0))):
        path.write_text(text)
        assert load_offset(path) == expected


def test_the_offset_is_kept_for_the_next_start(tmp_path) -> None:
    path = tmp_path / "dev-clock"
    assert load_offset(path) == timedelta(0)
    save_offset(path, timedelta(days=40, seconds=3))
    assert load_offset(path) == timedelta(days=40, seconds=3)
    path.write_text("not a number")
    assert load_offset(path) == timedelta(0)


def test_new_events_take_the_time_of_the_clock_in_force() -> None:
    def envelope() -> Envelope:
        return Envelope(source="/binome/test", type="binome.test.Probe.v1", subject="s", data={}, sequence=1, tenant="t")

    assert abs(envelope().time - datetime.now(UTC)) < timedelta(minutes=1)
    clock = PlatformClock(timedelta(days=90))
    token = event_clock.set(clock)
    try:
        assert envelope().time - datetime.now(UTC) > timedelta(days=89)
    finally:
        event_clock.reset(token)
    assert abs(envelope().time - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("settings", "mounted"),
    [
        ({}, True),  # the fully embedded stack is dev mode
        ({"dev_clock": False}, False),  # dev mode may turn it off
        ({"database_url": "postgresql://db/binome"}, False),  # not dev mode...
        ({"database_url": "postgresql://db/binome", "dev_clock": True}, False),  # ...whatever dev_clock says
        ({"dev_mode": False, "dev_clock": True}, False),
        ({"database_url": "postgresql://db/binome", "dev_mode": True}, True),
    ],
)
def test_the_dev_clock_exists_only_in_dev_mode(settings: dict, mounted: bool) -> None:
    from libs.runtime.platform import Platform
    from libs.settings import Settings

    # Every knob given, so that the environment (BINOME_DATABASE_URL in CI...) plays no part.
    given = {"database_url": None, "kafka_bootstrap": None, "dev_mode": None, "dev_clock": None, **settings}
    platform = Platform(Settings(**given), [], None, None)  # type: ignore[arg-type]
    assert platform.dev_clock is mounted


def test_a_shared_clock_is_one_now_for_every_process_mapping_it(tmp_path) -> None:
    """``binome up --workers N``: an advance answered by one worker is every worker's "now"."""
    from libs.runtime.clock import SharedPlatformClock

    background = SharedPlatformClock(tmp_path / "dev-clock", timedelta(hours=1))  # the offset saved by the last run
    worker = SharedPlatformClock(tmp_path / "dev-clock")  # a worker reads it, never sets it back
    assert worker.offset == background.offset == timedelta(hours=1)
    worker.advance(timedelta(days=2))
    assert background.offset == timedelta(days=2, hours=1)
    late = SharedPlatformClock(tmp_path / "dev-clock", timedelta(hours=1))  # restarted with the older saved offset
    assert late.offset == timedelta(days=2, hours=1)
    with pytest.raises(ValueError, match="at most 731 days"):
        background.advance(timedelta(days=730))  # the bound counts what the other process advanced
    assert worker.offset == timedelta(days=2, hours=1)
