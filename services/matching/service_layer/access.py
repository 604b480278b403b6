"""Who may see and act on what.

* ``hr_admin`` and ``service``: the whole organisation.
* ``regional_committee``: objects whose country it holds; a pair's and an
  exclusion's country is the mentee's, a run's are all its waves'. Anything
  else is "not found" (404), exactly like an object that does not exist.
* ``participant`` (token subject = participant id): its own suggestions and
  the pairs it is in.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from libs.auth.principal import PARTICIPANT, Principal


def is_self(principal: Principal, participant_id: UUID | str) -> bool:
    return principal.has_role(PARTICIPANT) and principal.subject == str(participant_id)


def sees_country(principal: Principal, organisation: str, country: str) -> bool:
    return principal.can_see(organisation, country)


def sees_countries(principal: Principal, organisation: str, countries: Iterable[str]) -> bool:
    return all(principal.can_see(organisation, c) for c in countries)
