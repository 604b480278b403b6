"""A stream that is no pair (an exclusion, an interest), as its events: what
``Repository.get`` folds it into, for commands that only need its facts and
its version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.events.registry import DomainEvent


@dataclass(frozen=True)
class History:
    organisation: str
    events: tuple[DomainEvent, ...]

    @classmethod
    def rebuild(cls, organisation: str, events: Sequence[DomainEvent]) -> History:
        return cls(organisation, tuple(events))

    @property
    def version(self) -> int:
        return len(self.events)
