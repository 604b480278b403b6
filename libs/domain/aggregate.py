"""The base of an event-sourced aggregate: its state is folded from its
stream, and the events it records stay pending until the repository appends
them, expecting the stream at ``expected_version`` (a conflict is a 409)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

from libs.events.registry import DomainEvent


class Aggregate:
    #: The event that opens a stream of this kind: a stream opened by another
    #: event belongs to another kind of aggregate.
    created_by: ClassVar[type[DomainEvent]]
    #: How messages name it ("programme"), where a service uses it.
    kind: ClassVar[str]

    def __init__(self, organisation: str) -> None:
        """A new aggregate, with no event yet."""
        self.organisation = organisation
        self.version = 0  # the stream's version, pending events included
        self.pending: list[DomainEvent] = []

    @classmethod
    def rebuild(cls, organisation: str, events: Sequence[DomainEvent]) -> Self | None:
        """The aggregate as its events left it; None if they are not its stream."""
        if not events or type(events[0]) is not cls.created_by:
            return None
        aggregate = cls(organisation)
        for past in events:
            aggregate.apply(past)
            aggregate.version += 1
        return aggregate

    @property
    def expected_version(self) -> int:
        """The stream version the pending events are based on."""
        return self.version - len(self.pending)

    @property
    def stream_id(self) -> str:
        """Its stream: by default its ``id``."""
        return str(self.id)  # type: ignore[attr-defined]

    @property
    def country(self) -> str | None:
        """The envelope's ``country``."""
        return None

    def record(self, new: DomainEvent) -> None:
        """A new fact: folded into the state now, appended by the repository."""
        self.apply(new)
        self.version += 1
        self.pending.append(new)

    def take_pending(self) -> list[DomainEvent]:
        """The new events, handed to the repository once."""
        taken, self.pending = self.pending, []
        return taken

    def apply(self, past: DomainEvent) -> None:
        """Fold one event into the state; by default ``_on_<EventName>(event)``."""
        getattr(self, f"_on_{type(past).__name__}")(past)
