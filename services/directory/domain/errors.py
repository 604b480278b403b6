"""What the directory refuses beyond one person's own rules."""

from __future__ import annotations

from libs.domain.errors import InvalidInput, InvalidState, Issue, NotFound

__all__ = ["InvalidInput", "InvalidState", "Issue", "NotFound", "UserNameTaken"]


class UserNameTaken(InvalidState):
    """Another person of the organisation holds this userName (SCIM ``uniqueness``)."""

    def __init__(self) -> None:
        super().__init__("Another user of the organisation has this userName.")
