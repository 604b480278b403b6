"""The base of the sessions aggregates: state folded from a stream, new
events kept as pending until the repository appends them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

from libs.events.registry import DomainEvent


class Aggregate:
    #: The event that opens a stream of this kind: a stream opened by another
    #: event is not this kind of aggregate.
    created_by: ClassVar[type[DomainEvent]]

    def __init__(self, organisation: str) -> None:
        self.organisation = organisation
        self.version = 0  # the stream's version, pending events included
        self.pending: list[DomainEvent] = []

    @property
    def stream_id(self) -> str:
        raise NotImplementedError

    @property
    def country(self) -> str | None:
        """The envelope's ``country``."""
        return None

    @classmethod
    def from_stream(cls, organisation: str, events: Sequence[DomainEvent]) -> Self | None:
        if not events or type(events[0]) is not cls.created_by:
            return None
        aggregate = cls.__new__(cls)
        Aggregate.__init__(aggregate, organisation)
        for past in events:
            aggregate.apply(past)
            aggregate.version += 1
        return aggregate

    @property
    def loaded_version(self) -> int:
        """The version the pending events expect the stream to be at."""
        return self.version - len(self.pending)

    def record(self, new: DomainEvent) -> None:
        self.apply(new)
        self.version += 1
        self.pending.append(new)

    def take_pending(self) -> list[DomainEvent]:
        taken, self.pending = self.pending, []
        return taken

    def apply(self, past: DomainEvent) -> None:
        raise NotImplementedError
