"""What the domain refuses, and why.

* ``InvalidInput``: the command's own content breaks a rule (unknown theme,
  capacity of a mentee...). It lists every wrong field at once -> 422.
* ``InvalidState``: the content is fine but the aggregate's state forbids the
  change (enrolling into a closed wave, withdrawing twice) -> 409.
* ``NotFound``: no such object, or not one the caller may see -> 404.

Field paths are relative to the command ("themes_wanted.0.theme"); the API
prefixes them ("body.themes_wanted.0.theme"), the bulk import names the
column.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


class DomainError(Exception):
    pass


@dataclass(frozen=True)
class Issue:
    field: str
    message: str

    def under(self, prefix: str) -> Issue:
        return Issue(f"{prefix}.{self.field}" if prefix else self.field, self.message)


class InvalidInput(DomainError):
    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{i.field}: {i.message}" for i in issues))

    def under(self, prefix: str) -> InvalidInput:
        return InvalidInput([i.under(prefix) for i in self.issues])


class InvalidState(DomainError):
    pass


class NotFound(DomainError):
    def __init__(self, kind: str, identifier: object) -> None:
        self.kind, self.identifier = kind, identifier
        super().__init__(f"{kind} {identifier} not found")


class Issues:
    """Collects every broken rule of a command, then raises them together."""

    def __init__(self) -> None:
        self.items: list[Issue] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(Issue(field, message))

    def check(self, condition: bool, field: str, message: str) -> None:
        if not condition:
            self.add(field, message)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)


class DuplicateEnrolment(InvalidState):
    """The person has an enrolment in this programme already (one per person per programme).

    ``existing`` is named only when the caller may see it (``visible``): a
    committee learns that a person is enrolled elsewhere, never where.
    """

    def __init__(self, employee_ref: str | None = None, existing: UUID | None = None, visible: bool = True) -> None:
        self.employee_ref, self.existing, self.visible = employee_ref, existing, visible
        who = f"Employee {employee_ref}" if employee_ref else "This person"
        if existing is None:
            where = ""
        elif visible:
            where = f" as participant {existing}"
        else:
            where = " in a wave outside your countries"
        super().__init__(f"{who} is already enrolled in this programme{where}.")
