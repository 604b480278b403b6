"""The Kafka client's reconnect warnings: one line per failure period."""

from __future__ import annotations

import logging

import pytest

from libs.observability.logging import RepeatedFailures


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr("libs.observability.logging.time.monotonic", lambda: now[0])
    return now


def record(name: str = "aiokafka.conn", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "Unable connect to node", (), None)


def summaries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "binome.kafka_client"]


def test_the_first_warning_passes_and_the_repeats_are_counted(clock, caplog) -> None:
    noise = RepeatedFailures("aiokafka")
    passed = [noise.filter(record()) for _ in range(290)]
    assert passed[0] and not any(passed[1:])
    assert noise.suppressed == 289
    assert noise.filter(record(level=logging.INFO))  # not a failure: untouched
    assert noise.filter(record(name="libs.messaging.relay"))  # other loggers: untouched


def test_recovery_reports_the_count_and_opens_a_new_period(clock, caplog) -> None:
    caplog.set_level(logging.WARNING)
    noise = RepeatedFailures("aiokafka")
    for _ in range(10):
        noise.filter(record())
    noise.recovered()
    assert summaries(caplog) == ["Kafka client recovered: 9 repeated warnings suppressed over 0s"]
    assert noise.filter(record())  # the next failure is news again


def test_a_long_outage_is_summarised_once_a_minute(clock, caplog) -> None:
    caplog.set_level(logging.WARNING)
    noise = RepeatedFailures("aiokafka", quiet_s=10, summary_s=60)
    for _ in range(130):  # a failing line every second for 130 s
        noise.filter(record())
        clock[0] += 1
    assert [s.split(":")[0] for s in summaries(caplog)] == ["Kafka client still failing"] * 2


def test_a_quiet_spell_ends_the_period(clock, caplog) -> None:
    caplog.set_level(logging.WARNING)
    noise = RepeatedFailures("aiokafka", quiet_s=10)
    noise.filter(record())
    noise.filter(record())
    clock[0] += 30
    assert noise.filter(record())  # a new period: shown
    assert summaries(caplog) == ["Kafka client recovered: 1 repeated warnings suppressed over 30s"]
