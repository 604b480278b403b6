"""What a domain refuses, and why; each service's API maps them to a status.

* ``InvalidInput``: the command's own content breaks a rule (unknown theme,
  capacity of a mentee, a start in the past...). It lists every wrong field
  at once -> 422.
* ``InvalidState``: the content is fine but the aggregate's state forbids the
  change (enrolling into a closed wave, withdrawing twice) -> 409.
* ``NotFound``: no such object, or not one the caller may see -> 404.

Field paths are relative to the command ("themes_wanted.0.theme"); the API
prefixes them ("body.themes_wanted.0.theme"), a bulk import names the column.
A service adds its own subclasses in ``services/<name>/domain/errors.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


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
