"""The headers of a record the relay publishes: a structured CloudEvent, and
its position in the source log (``binome-position``)."""

from __future__ import annotations

import pytest

from libs.messaging.kafka import CLOUDEVENTS_CONTENT_TYPE, event_headers, position_of


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
    assert position_of(headers) == position


def test_an_event_record_is_a_structured_cloudevent_with_its_position() -> None:
    assert event_headers(7) == [CLOUDEVENTS_CONTENT_TYPE, ("binome-position", b"7")]
    assert position_of(event_headers(7)) == 7
    assert event_headers() == [CLOUDEVENTS_CONTENT_TYPE]
