"""Binome event contracts: the CloudEvents envelope, the registry of event
types, upcasters, and serialisation. Event payload models live in
``libs/events/contexts/<context>.py``, one module per bounded context."""

from libs.events.envelope import Envelope, event_type_name, topic_for_context
from libs.events.registry import (
    DomainEvent,
    EventRegistry,
    UnknownEventType,
    event,
    new_envelope,
    registry,
    upcaster,
)
from libs.events import contexts as _contexts  # noqa: F401  (registers every event type)

__all__ = [
    "DomainEvent",
    "Envelope",
    "EventRegistry",
    "UnknownEventType",
    "event",
    "event_type_name",
    "new_envelope",
    "registry",
    "topic_for_context",
    "upcaster",
]
