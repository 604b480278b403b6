"""What every service's command handlers share: who acts (the events'
``actor``) and the ``If-Match`` check (a stale version is a 412,
libs/api/commands.py)."""

from __future__ import annotations

from typing import ClassVar, Protocol

from libs.auth.principal import Principal
from libs.events.contexts.enrollment import Actor


class StaleVersion(Exception):
    """``If-Match`` named a version the object has moved past (HTTP 412)."""

    def __init__(self, kind: str, expected: int, actual: int) -> None:
        super().__init__(f"The {kind} is at version {actual}, not {expected}: read it again and retry.")
        self.expected, self.actual = expected, actual


class Versioned(Protocol):
    kind: ClassVar[str]  # how messages name it ("session")
    version: int


def check_version(state: Versioned, expected: int | None) -> None:
    """Refuse a conditional command (``expected`` from ``If-Match``) on a moved object."""
    if expected is not None and expected != state.version:
        raise StaleVersion(state.kind, expected, state.version)


def actor_of(principal: Principal) -> Actor:
    """The events' ``actor``: the caller's subject and client."""
    return Actor(subject=principal.subject, client_id=principal.client_id)
