"""What the evaluation domain refuses. The API maps each to a status:
``InvalidInput`` 422 (every wrong field, by path), ``Conflict`` 409,
``NotFound`` 404 (also for objects the caller may not see)."""

from __future__ import annotations

from libs.domain.errors import InvalidInput, Issue, Issues, NotFound

__all__ = ["Conflict", "InvalidInput", "Issue", "Issues", "NotFound"]


class Conflict(Exception):
    """The request is well formed but the object's state forbids it."""

