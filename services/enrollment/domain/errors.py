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

from uuid import UUID

from libs.domain.errors import DomainError, InvalidInput, InvalidState, Issue, Issues, NotFound

__all__ = ["DomainError", "DuplicateEnrolment", "InvalidInput", "InvalidState", "Issue", "Issues", "NotFound"]


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
