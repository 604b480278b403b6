"""The CloudEvents envelope: validation, JSON round trip, and interoperability
with the official CloudEvents Python SDK (what a non-Binome consumer would use)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.http import from_json as v1_from_json
from pydantic import ValidationError

from libs.events import Envelope, new_envelope
from libs.events.contexts.platform import ProbeRecorded
from libs.events.serialization import OPTIONAL_ATTRIBUTES, dumps, loads, to_json_dict
from libs.messaging.kafka import event_headers


def make(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "source": "/binome/platform",
        "type": "binome.platform.ProbeRecorded.v1",
        "subject": "probe-1",
        "data": {"probe": "healthz", "value": 3},
        "sequence": 7,
        "tenant": "acme",
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad_type",
    [
        "binome.platform.ProbeRecorded",  # no version
        "binome.platform.ProbeRecorded.1",  # version without "v"
        "binome.platform.ProbeRecorded.vX",  # version not a number
        "binome.platform.ProbeRecorded.v",  # empty version
        "acme.platform.ProbeRecorded.v1",  # not ours
        "binome.ProbeRecorded.v1",  # no context
        "binome.platform.Probe.Recorded.v1",  # too many parts
        "",
    ],
)
def test_bad_type_is_rejected(bad_type: str) -> None:
    with pytest.raises(ValidationError, match="type"):
        make(type=bad_type)


@pytest.mark.parametrize("bad_source", ["binome/platform", "/acme/platform", "platform", "", "https://binome/x"])
def test_bad_source_is_rejected(bad_source: str) -> None:
    with pytest.raises(ValidationError, match="source"):
        make(source=bad_source)


@pytest.mark.parametrize(
    "overrides",
    [
        {"sequence": 0},  # an aggregate's first event is version 1
        {"specversion": "0.3"},
        {"datacontenttype": "text/plain"},
        {"id": "not-a-uuid"},
        {"unknownext": "x"},  # extra attributes are forbidden: typos must not pass
    ],
)
def test_other_invalid_attributes_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make(**overrides)


def test_type_parts_are_exposed() -> None:
    envelope = make(type="binome.matching.PairFormed.v12")
    assert (envelope.context, envelope.name, envelope.type_version) == ("matching", "PairFormed", 12)


def test_envelope_is_immutable() -> None:
    envelope = make()
    with pytest.raises(ValidationError):
        envelope.subject = "other"  # type: ignore[misc]
    assert envelope.with_sequence(9).sequence == 9
    assert envelope.sequence == 7


# --------------------------------------------------------------------------- JSON round trip


def test_round_trip_without_optional_attributes() -> None:
    envelope = make()
    assert loads(dumps(envelope)) == envelope


def test_round_trip_with_every_attribute() -> None:
    envelope = make(country="FR", correlationid="req-1", causationid=str(uuid.uuid4()))
    assert loads(dumps(envelope)) == envelope
    assert loads(dumps(envelope).decode()) == envelope  # str accepted too


def test_optional_attributes_are_omitted_when_none() -> None:
    envelope = make()
    body = orjson.loads(dumps(envelope))
    for name in OPTIONAL_ATTRIBUTES:
        assert name not in body  # CloudEvents: absent, never null
    assert to_json_dict(envelope) == body


def test_wire_values_are_plain_json() -> None:
    envelope = make(time=datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC))
    body = orjson.loads(dumps(envelope))
    assert body["id"] == str(envelope.id)
    assert body["time"] == "2025-03-01T09:30:15.123456Z"  # RFC 3339, "Z" for UTC
    assert body["specversion"] == "1.0"
    assert body["datacontenttype"] == "application/json"
    assert body["streamversion"] == 7
    assert "sequence" not in body  # the CloudEvents extension of that name means something else


def test_an_event_stored_before_the_rename_still_reads() -> None:
    # Event stores and outboxes keep old events as written: numeric "sequence".
    old = orjson.loads(dumps(make()))
    old["sequence"] = old.pop("streamversion")
    envelope = loads(orjson.dumps(old))
    assert envelope.sequence == 7
    assert orjson.loads(dumps(envelope)) == {**{k: v for k, v in old.items() if k != "sequence"}, "streamversion": 7}


def test_new_envelope_builds_a_valid_envelope_from_a_payload() -> None:
    envelope = new_envelope(
        ProbeRecorded(probe="p", value=1), service="platform", subject="s-1", tenant="acme", country="DE"
    )
    assert envelope.type == "binome.platform.ProbeRecorded.v1"
    assert envelope.source == "/binome/platform"
    assert envelope.data == {"probe": "p", "value": 1}
    assert envelope.time.tzinfo is not None
    assert loads(dumps(envelope)) == envelope


# --------------------------------------------------------------------------- official SDK
# cloudevents 2.x: ``cloudevents.core`` is the current API, ``cloudevents.v1`` the
# 1.x-compatible one (``cloudevents.http`` of 1.x moved to ``cloudevents.v1.http``).

EXTENSIONS = {"streamversion": 7, "tenant": "acme", "country": "FR", "correlationid": "req-1", "causationid": "cause-1"}


def full_envelope() -> Envelope:
    return make(
        time=datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        country="FR",
        correlationid="req-1",
        causationid="cause-1",
    )


def test_sdk_core_reads_a_serialised_envelope() -> None:
    envelope = full_envelope()
    event = JSONFormat().read(None, dumps(envelope))  # None: detect the spec version
    assert event.get_specversion() == "1.0"
    assert event.get_id() == str(envelope.id)
    assert event.get_type() == envelope.type
    assert event.get_source() == envelope.source
    assert event.get_subject() == envelope.subject
    assert event.get_time() == envelope.time
    assert event.get_datacontenttype() == "application/json"
    for name, value in EXTENSIONS.items():
        assert event.get_extension(name) == value
    assert event.get_data() == envelope.data


def test_sdk_core_reads_an_envelope_without_optional_attributes() -> None:
    event = JSONFormat().read(None, dumps(make()))
    assert event.get_extension("tenant") == "acme"
    for name in OPTIONAL_ATTRIBUTES:
        assert name not in event.get_attributes()


def test_sdk_v1_api_reads_a_serialised_envelope() -> None:
    envelope = full_envelope()
    event = v1_from_json(dumps(envelope))
    assert event["id"] == str(envelope.id)
    assert event["type"] == envelope.type
    assert event["source"] == envelope.source
    assert event["subject"] == envelope.subject
    for name, value in EXTENSIONS.items():
        assert event[name] == value
    assert event.data == envelope.data


def test_sdk_kafka_structured_binding_reads_the_headers_the_producers_write() -> None:
    # The headers are the ones the relay and the dead-letter parking write
    # (libs/messaging/kafka.event_headers), not a copy; that the records on
    # the broker really carry them is proven by
    # tests/integration/test_cloudevents_wire.py.
    envelope = full_envelope()
    headers = {name: value for name, value in event_headers(position=3)}
    assert headers["content-type"].split(b";")[0] == b"application/cloudevents+json"
    message = KafkaMessage(headers=headers, key=envelope.subject.encode(), value=dumps(envelope))
    event = from_structured(message, JSONFormat())
    assert event.get_id() == str(envelope.id)
    assert event.get_extension("partitionkey") == envelope.subject
    assert event.get_data() == envelope.data


def test_naive_time_never_reaches_the_wire() -> None:
    # A naive time would serialise without an offset (not RFC 3339).
    with pytest.raises(ValidationError, match="timezone"):
        make(time=datetime(2025, 3, 1, 9, 30))
