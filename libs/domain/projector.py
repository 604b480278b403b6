"""The base of every service's inline read-table projector: the code that
writes the service's own read tables from its own events, inside the
transaction that appends them (``Repository.save`` calls ``apply``), and again
from the whole log for ``binome replay SERVICE read-tables`` (``rebuild``).

It dispatches like every consumer of Binome, by name (``libs/events/by_name.py``):
``async def on_<EventClassName>(self, conn, envelope, event)``. It is not a
``libs.messaging.dispatch.Consumer``: it has no consumer group, reads no topic,
records nothing in ``applied_events`` and has no dead letters, so it shares
the name rule only, not the class. One thing differs on purpose: an event of
its own context without a method is refused (``TypeError``), as the
isinstance chains it replaces refused it; a consumer ignores what it does not
read, but a read table that skipped one of its own events would be wrong for
ever. An event of another context is refused too.

A projector that writes a run of per-object events in one statement (matching's
pairs, enrollment's participants: a 1,500-row import is one round trip)
folds their documents with a ``folder`` (``by_name.fold``) and overrides
``apply``; the folder's types count as handled (``handled_types``), and
``binome events`` lists the folder's method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, ClassVar

import asyncpg

from libs.events import by_name
from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent, registry

#: ``on_<EventClassName>(conn, envelope, event)``, bound to its projector.
Handler = Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]


class InlineProjector:
    #: The service's own context (only its events are projected).
    context: ClassVar[str]
    #: Folds a per-object document from the events ``apply`` batches (None: none).
    folder: ClassVar[type | None] = None

    @classmethod
    def handled_types(cls) -> tuple[str, ...]:
        """The event class names it writes (its methods and its folder's), sorted."""
        folded = by_name.handled_types(cls.folder) if cls.folder is not None else ()
        return tuple(sorted({*by_name.handled_types(cls), *folded}))

    @classmethod
    def method_of(cls, name: str) -> str:
        """Where the type ``name`` is handled: ``<Class>.on_<name>`` (``binome events``)."""
        owner = cls if hasattr(cls, by_name.PREFIX + name) else cls.folder
        assert owner is not None, f"{cls.__name__} does not handle {name}"
        return f"{owner.__name__}.{by_name.PREFIX}{name}"

    def events(self, envelopes: Sequence[Envelope]) -> Iterator[tuple[Envelope, DomainEvent]]:
        """Each envelope with its event; one of another context, or without a
        method here, is refused (``TypeError``)."""
        handled = type(self).handled_types()
        for envelope in envelopes:
            event = registry.load(envelope)
            if event.context != self.context:
                raise TypeError(f"{envelope.type} is not a {self.context} event")
            if type(event).__name__ not in handled:
                raise TypeError(f"no read table for {event.event_type()}")
            yield envelope, event

    def handler_for(self, event: DomainEvent) -> Handler:
        handler = by_name.method_for(self, event)
        if handler is None:
            raise TypeError(f"no read table for {event.event_type()}")
        return handler  # type: ignore[no-any-return]

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """The events in log order, one at a time."""
        for envelope, event in self.events(envelopes):
            await self.handler_for(event)(conn, envelope, event)
