"""One way for a consumer to dispatch an event: by its class name.

Every consumer of Binome (a projection, a process manager: anything the
consumer runtime of ``libs/messaging/consumer.py`` feeds) lives in
``services/<service>/consumers/``, one module per consumer, and subclasses
``Consumer``::

    class PairDirectory(Consumer):
        name = "sessions-pair-directory"
        contexts = ("matching", "enrollment")

        async def on_PairFormed(self, conn, envelope, event: PairFormed) -> None: ...

        async def reset(self, conn) -> None: ...

``handle`` calls ``on_<EventClassName>`` and ignores the events the consumer
has no method for (the runtime still records them as applied, so a replay
skips them like the others). ``handles`` tells the runtime so by type, before
it opens an event's personal values (a vault look-up) and loads its payload:
it does neither for an event the consumer ignores. A consumer that overrides
``handler_for`` overrides ``handles`` to agree with it. ``handle_batch`` applies a batch one event at a
time, in delivery order; a consumer that writes a batch at once (insights)
overrides it and may look its handlers up with ``handler_for``.
``handled_types`` lists the types a consumer reads (``binome events``). The
name rule itself is ``libs/events/by_name.py``, shared with each service's
inline read-table projector (``libs/domain/projector.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from libs.events import by_name
from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent
from libs.messaging.consumer import handle_each

#: ``on_<EventClassName>(conn, envelope, event)``, bound to its consumer.
Handler = Callable[[Any, Envelope, Any], Awaitable[Any]]


class Consumer:
    """Base of every consumer: a ``Projection`` (libs/messaging/consumer.py)
    that dispatches on the event's class name."""

    #: The consumer group and the key in ``applied_events`` (an instance may
    #: set its own: tests give each environment one).
    name: str
    #: The bounded contexts it reads (``binome.<context>.events`` topics).
    contexts: tuple[str, ...]
    #: False for a consumer that uses no personal value (insights' statistics,
    #: the webhook fan-out, which withholds them): the runtime then reads each
    #: sealed value as ``ERASED`` instead of opening it (libs/gdpr/personal.py
    #: ``withheld``): no vault look-up per batch, no plain value in its memory.
    opens_personal_values: bool = True

    def handler_for(self, event: DomainEvent) -> Handler | None:
        """The method for ``event``'s type, or None: the consumer ignores it."""
        return by_name.method_for(self, event)

    def handles(self, model: type[DomainEvent]) -> bool:
        """Whether ``handler_for`` finds a method for events of ``model``."""
        return by_name.has_method_for(self, model)

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        handler = self.handler_for(event)
        if handler is not None:
            await handler(conn, envelope, event)

    async def handle_batch(self, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, DomainEvent]]) -> None:
        """One event at a time, in delivery order: a handler may read what the
        earlier events of the batch wrote."""
        await handle_each(self, conn, items)

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Empty the read model (a rebuild); every consumer says what it owns."""
        raise NotImplementedError(f"{type(self).__name__} must say how to empty its read model")

    @classmethod
    def handled_types(cls) -> tuple[str, ...]:
        """The event class names it has a method for, sorted."""
        return by_name.handled_types(cls)
