"""Reading a record's source context and position (header ``binome-position``)."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from libs.messaging.positions import newest_positions, source_context, source_position


def record(topic: str, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, 0, 0, 0, b"k", b"{}", None, 0, 0, headers)


@pytest.mark.parametrize(
    ("topic", "prefix", "context"),
    [
        ("binome.enrollment.events", "", "enrollment"),
        ("t1.binome.matching.events", "t1.", "matching"),
        ("binome.deadletter", "", None),
        ("t1.binome.matching.events", "t2.", None),
        ("binome.matching.events.extra", "", None),
    ],
)
def test_the_source_is_the_context_of_the_topic(topic: str, prefix: str, context: str | None) -> None:
    assert source_context(topic, prefix) == context


@pytest.mark.parametrize(
    ("headers", "position"),
    [
        ([("content-type", b"application/cloudevents+json; charset=utf-8"), ("binome-position", b"42")], 42),
        ([], None),
        ([("binome-position", b"-1")], None),
        ([("binome-position", b"4x")], None),
        ([("binome-position", None)], None),
    ],
)
def test_the_position_is_an_ascii_decimal_header(headers, position: int | None) -> None:
    assert source_position(record("binome.sessions.events", headers)) == position


def test_the_newest_position_per_source() -> None:
    records = [
        record("binome.enrollment.events", [("binome-position", b"7")]),
        record("binome.enrollment.events", [("binome-position", b"3")]),
        record("binome.matching.events", [("binome-position", b"11")]),
        record("binome.matching.events", []),
        record("other", [("binome-position", b"99")]),
    ]
    assert newest_positions(records) == {"enrollment": 7, "matching": 11}
