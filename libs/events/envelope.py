"""The CloudEvents 1.0 structured-mode envelope every Binome event travels in.

Wire format (JSON): the required CloudEvents attributes, ``subject``, ``time``,
``datacontenttype``, ``data``, and Binome's extension attributes
``streamversion`` (the aggregate's version after this event), ``tenant``
(organisation), ``country``, ``correlationid`` and ``causationid``. Extension
names are lower-case alphanumerics, as CloudEvents 1.0 requires.

The stream version is not the CloudEvents ``sequence`` extension: that one is
a string ordered per ``source`` (here, a whole service), while a version
orders one aggregate's stream only. Events written before the rename carry it
as a number named ``sequence``; the envelope still reads that form (the event
stores and outboxes keep old events as written), and writes only the new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SPEC_VERSION = "1.0"
#: The extension attribute holding the aggregate's version after the event.
STREAM_VERSION = "streamversion"
#: Its name until events followed the CloudEvents ``sequence`` extension's
#: meaning (a string ordered per source): old stored events still carry it.
OLD_STREAM_VERSION = "sequence"

#: Where a new event's ``time`` comes from: the system clock, unless the
#: platform runs with a clock of its own (libs/runtime/clock.py sets it for
#: every request and worker), so that event times and "now" agree.
event_clock: ContextVar[Callable[[], datetime]] = ContextVar("event_clock", default=lambda: datetime.now(UTC))


def topic_for_context(context: str, prefix: str = "") -> str:
    """Kafka topic of a bounded context: one topic per context."""
    return f"{prefix}binome.{context}.events"


def event_type_name(context: str, name: str, version: int) -> str:
    """``binome.<context>.<EventName>.v<N>``"""
    return f"binome.{context}.{name}.v{version}"


class Envelope(BaseModel):
    """A CloudEvent as stored in the event store and published on Kafka.

    ``data`` is kept as a plain dict here: the envelope is the transport; the
    typed payload is obtained through the registry (``registry.load``), which
    also upcasts old versions.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True)

    specversion: Literal["1.0"] = SPEC_VERSION
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str
    type: str
    subject: str
    time: AwareDatetime = Field(default_factory=lambda: event_clock.get()())
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    # Extensions. ``sequence`` in Python (the name every consumer reads),
    # ``streamversion`` on the wire; ``sequence`` is the old wire name, still read.
    sequence: int = Field(
        ge=1,
        validation_alias=AliasChoices(STREAM_VERSION, OLD_STREAM_VERSION),
        serialization_alias=STREAM_VERSION,
    )
    tenant: str
    country: str | None = None
    correlationid: str | None = None
    causationid: str | None = None

    @field_validator("source")
    @classmethod
    def _source_is_binome(cls, value: str) -> str:
        if not value.startswith("/binome/"):
            raise ValueError("source must be /binome/<service>")
        return value

    @field_validator("type")
    @classmethod
    def _type_is_versioned(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != "binome" or not parts[3].startswith("v") or not parts[3][1:].isdigit():
            raise ValueError("type must be binome.<context>.<EventName>.v<N>")
        return value

    @property
    def context(self) -> str:
        return self.type.split(".")[1]

    @property
    def name(self) -> str:
        return self.type.split(".")[2]

    @property
    def type_version(self) -> int:
        return int(self.type.split(".")[3][1:])

    def with_sequence(self, sequence: int) -> Envelope:
        return self.model_copy(update={"sequence": sequence})
