"""What the sessions domain refuses, and why.

* ``InvalidInput``: the command's own content breaks a rule (a duration out
  of bounds, a start in the past, a topic outside the programme's themes). It
  lists every wrong field at once -> 422 naming ``body.<field>``.
* ``InvalidState``: the content is fine but the state forbids it (the pair is
  not formed, the session was held already, the time is taken) -> 409.
* ``NotFound``: no such object, or not one the caller may see -> 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID


class DomainError(Exception):
    pass


@dataclass(frozen=True)
class Issue:
    field: str
    message: str


class InvalidInput(DomainError):
    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{i.field}: {i.message}" for i in issues))


@dataclass
class Issues:
    """Collects every broken input rule of a command, then raises them together."""

    items: list[Issue] = field(default_factory=list)

    def check(self, condition: bool, field_name: str, message: str) -> None:
        if not condition:
            self.items.append(Issue(field_name, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)


class InvalidState(DomainError):
    pass


class TimeTaken(InvalidState):
    """The slot overlaps another session of one of the two people."""

    def __init__(self, participant_id: UUID, session_id: UUID) -> None:
        self.participant_id, self.session_id = participant_id, session_id
        super().__init__(f"Participant {participant_id} has another session at that time.")


class NotFound(DomainError):
    def __init__(self, kind: str, identifier: object) -> None:
        self.kind, self.identifier = kind, identifier
        super().__init__(f"{kind} {identifier} not found")
