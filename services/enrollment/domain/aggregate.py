"""The base of every aggregate: state folded from its events, new events
recorded as pending until the repository appends them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self
from uuid import UUID

from libs.events.registry import DomainEvent


class Aggregate:
    #: The event that starts a stream of this kind; any other first event
    #: means the id belongs to another kind of aggregate.
    created_by: ClassVar[type[DomainEvent]]
    kind: ClassVar[str]

    id: UUID
    organisation: str

    @classmethod
    def _blank(cls, organisation: str) -> Self:
        self = cls.__new__(cls)
        self.organisation = organisation
        self.version = 0
        self.pending: list[DomainEvent] = []
        return self

    @classmethod
    def rebuild(cls, organisation: str, events: Sequence[DomainEvent]) -> Self | None:
        """The aggregate as its events left it; None if they are not its stream."""
        if not events or type(events[0]) is not cls.created_by:
            return None
        self = cls._blank(organisation)
        for event in events:
            self._apply(event)
            self.version += 1
        return self

    @property
    def expected_version(self) -> int:
        """The stream version the pending events are based on."""
        return self.version - len(self.pending)

    @property
    def country(self) -> str | None:
        return None

    def take_pending(self) -> list[DomainEvent]:
        """The new events, handed to the repository once."""
        events, self.pending = self.pending, []
        return events

    def _record(self, event: DomainEvent) -> None:
        self._apply(event)
        self.version += 1
        self.pending.append(event)

    def _apply(self, event: DomainEvent) -> None:
        getattr(self, f"_on_{type(event).__name__}")(event)
