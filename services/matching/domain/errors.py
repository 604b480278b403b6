"""What the matching service refuses, and the HTTP status each maps to.

* ``InvalidRequest``: the request names something that cannot work (a pin
  that breaks a hard constraint, a mentor who is not a candidate) -> 422
  naming the field.
* ``IllegalTransition``: the pair's state forbids the change (accepting a
  declined proposal, dissolving a pair that never formed) -> 409.
* ``NotFound``: no such object, or none the caller may see -> 404.
"""

from __future__ import annotations

from libs.domain.errors import NotFound

__all__ = ["IllegalTransition", "InvalidRequest", "MatchingError", "NotFound"]


class MatchingError(Exception):
    pass


class InvalidRequest(MatchingError):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


class IllegalTransition(MatchingError):
    pass

