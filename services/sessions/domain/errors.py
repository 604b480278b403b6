"""What the sessions domain refuses, and why.

* ``InvalidInput``: the command's own content breaks a rule (a duration out
  of bounds, a start in the past, a topic outside the programme's themes). It
  lists every wrong field at once -> 422 naming ``body.<field>``.
* ``InvalidState``: the content is fine but the state forbids it (the pair is
  not formed, the session was held already, the time is taken) -> 409.
* ``NotFound``: no such object, or not one the caller may see -> 404.
"""

from __future__ import annotations

from uuid import UUID

from libs.domain.errors import DomainError, InvalidInput, InvalidState, Issue, Issues, NotFound

__all__ = ["DomainError", "InvalidInput", "InvalidState", "Issue", "Issues", "NotFound", "TimeTaken"]


class TimeTaken(InvalidState):
    """The slot overlaps another session of one of the two people."""

    def __init__(self, participant_id: UUID, session_id: UUID) -> None:
        self.participant_id, self.session_id = participant_id, session_id
        super().__init__(f"Participant {participant_id} has another session at that time.")
