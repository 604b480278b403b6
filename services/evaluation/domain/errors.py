"""What the evaluation domain refuses. The API maps each to a status:
``InvalidInput`` 422 (every wrong field, by path), ``Conflict`` 409,
``NotFound`` 404 (also for objects the caller may not see)."""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.domain.errors import NotFound

__all__ = ["Conflict", "InvalidInput", "NotFound"]


@dataclass
class InvalidInput(Exception):
    #: (field path relative to the request body, message)
    issues: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.issues.append((path, message))

    def raise_if_any(self) -> None:
        if self.issues:
            raise self

    def __str__(self) -> str:
        return "; ".join(f"{path}: {message}" for path, message in self.issues)


class Conflict(Exception):
    """The request is well formed but the object's state forbids it."""

