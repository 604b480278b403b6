"""The one dispatch rule of Binome: an event goes to the method named
``on_<EventClassName>`` of whatever handles it.

Three kinds of handlers follow it: the Kafka-fed consumers
(``libs/messaging/dispatch.Consumer``), each service's inline read-table
projector (``libs/domain/projector.InlineProjector``) and the pure folds of a
read document (``fold``: matching's pair, enrollment's participant, sessions'
session documents). Only the name rule is shared here; what an event without a
method means is each kind's own (a consumer ignores it, a projector and a fold
refuse it).
"""

from __future__ import annotations

import functools
from typing import Any

from libs.events.registry import DomainEvent

PREFIX = "on_"


def method_for(handler: object, event: DomainEvent) -> Any | None:
    """``handler``'s ``on_<EventClassName>`` for ``event``, or None."""
    return getattr(handler, PREFIX + type(event).__name__, None)


def has_method_for(handler: object, model: type[DomainEvent]) -> bool:
    """Whether ``handler`` has an ``on_<EventClassName>`` for events of ``model``."""
    return hasattr(handler, PREFIX + model.__name__)


@functools.cache
def handled_types(cls: type) -> tuple[str, ...]:
    """The event class names ``cls`` has an ``on_`` method for, sorted
    (remembered per class: an inline projector checks every command's events
    against it, and ``dir`` walks the whole class each time)."""
    return tuple(sorted(n.removeprefix(PREFIX) for n in dir(cls) if n.startswith(PREFIX)))


def fold(folder: object, doc: Any, *args: Any, event: DomainEvent) -> Any:
    """``doc`` after ``event``, by ``folder``'s ``on_<EventClassName>(doc, *args,
    event)``; an event it has no method for is refused (``TypeError``): a read
    document that silently skipped one would be wrong for ever."""
    method = method_for(folder, event)
    if method is None:
        raise TypeError(f"{type(folder).__name__} folds no {event.event_type()}")
    return method(doc, *args, event)
