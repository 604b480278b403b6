"""What the organisation's HR directory (SCIM provisioning, topic
``binome.directory.events``) does to the programme, and enrolments that take
a provisioned person's profile from it.

* An enrolment may name a provisioned person by employee reference
  (``employeeNumber``): what the body leaves out (name, e-mail, manager,
  entity, business function, job level, languages, time zone) comes from the
  directory, and the wave must be in the person's country.
* A change of a linked person (``PersonUpdated``) is recorded on each of
  their participants still in a wave as ``ParticipantProfileUpdated`` with
  cause ``directory``: a new fact, never an edit of an earlier one. A new
  country is ``ParticipantRelocated``: the committee decides, nothing moves.
* A leaver (``PersonDeactivated``) withdraws from every wave not ended
  (``ParticipantWithdrew``, cause ``left_organisation``; matching then ends
  their pairs). A reactivation changes nothing by itself: the person may be
  enrolled again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from libs.domain.repository import UnitOfWork
from libs.events.contexts.directory import PersonUpdated
from libs.events.contexts.enrollment import Actor, ParticipantProfile, Role
from services.enrollment.adapters.directory import DirectoryPerson
from services.enrollment.domain.errors import InvalidInput, Issue
from services.enrollment.domain.participant import Enrolment, Participant
from services.enrollment.domain.wave import Wave
from services.enrollment.service_layer.views import Views

#: A participant's field -> the directory paths (``PersonUpdated.changed``) it comes from.
SOURCES: dict[str, tuple[str, ...]] = {
    "entity": ("profile.entity",),
    "business_function": ("profile.business_function",),
    "job_level": ("profile.job_level",),
    "languages": ("profile.languages",),
    "time_zone": ("profile.timezone",),
    "department": ("profile.department",),
    "display_name": (
        "identity.display_name",
        "identity.formatted_name",
        "identity.given_name",
        "identity.family_name",
        "identity.user_name",
    ),
    "email": ("identity.emails",),
    "manager_ref": ("manager_id",),
}
PERSONAL = frozenset({"display_name", "email", "manager_ref"})
#: Fields the directory may clear; for the others no value means "the directory does not say".
CLEARABLE = frozenset({"department", "manager_ref"})
COUNTRY = "profile.country"


def directory_values(person: DirectoryPerson) -> dict[str, Any]:
    """The participant's fields as the directory gives them."""
    p = person.profile
    return {
        "entity": p.entity,
        "business_function": p.business_function,
        "job_level": p.job_level,
        "languages": p.languages or None,
        "time_zone": p.timezone,
        "department": p.department,
        "display_name": person.display_name,
        "email": person.email,
        "manager_ref": person.manager_number,
    }


def touched(changed: Iterable[str], sources: Iterable[str]) -> bool:
    """True if a changed path is one of ``sources``, inside one, or holds one."""
    return any(c == s or c.startswith(s + ".") or s.startswith(c + ".") for c in changed for s in sources)


# -- enrolment by employee reference ----------------------------------------------------


async def provisioned(uow: UnitOfWork[Views], organisation: str, employee_ref: str) -> DirectoryPerson:
    """The provisioned, active person with this employee reference (422 naming
    ``employee_ref`` otherwise)."""
    person = await uow.views.directory.by_employee_number(uow.conn, organisation, employee_ref)
    if person is None:
        raise InvalidInput([Issue("employee_ref", "No person of the organisation's directory has this employee reference.")])
    if not person.active:
        raise InvalidInput([Issue("employee_ref", "This person has left the organisation (inactive in the directory).")])
    return person


def directory_enrolment(person: DirectoryPerson, given: dict[str, Any]) -> Enrolment:
    """The enrolment of ``person``: what ``given`` says, the directory for
    what it leaves out; a field neither gives is a 422 naming it."""
    values = {**{k: v for k, v in directory_values(person).items() if v is not None}, **given}
    required = set(SOURCES) - CLEARABLE
    issues = [
        Issue(name, "The directory has no value for this person: give it.")
        for name in sorted(required)
        if values.get(name) is None
    ]
    if issues:
        raise InvalidInput(issues)
    try:
        profile = ParticipantProfile.model_validate({k: v for k, v in values.items() if k in ParticipantProfile.model_fields})
    except ValidationError as exc:  # the directory's values do not fit a profile
        raise InvalidInput([Issue(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]) from None
    return Enrolment(
        role=Role(values["role"]),
        profile=profile,
        employee_ref=values["employee_ref"],
        display_name=values["display_name"],
        email=values["email"],
        motivation=values["motivation"],
        manager_ref=values.get("manager_ref"),
        country=person.profile.country,
    )


# -- directory events --------------------------------------------------------------------


async def _linked(uow: UnitOfWork[Views], person: DirectoryPerson) -> list[tuple[Participant, Wave]]:
    """The person's participants still in a wave that has not ended."""
    if person.employee_number is None:
        return []
    out = []
    for participant_id in await uow.views.directory.linked_participants(uow.conn, person.organisation, person.employee_number):
        participant = await uow.repo.get(Participant, participant_id)
        assert participant is not None, "a participant row has its stream"
        wave = await uow.repo.get(Wave, participant.wave_id)
        assert wave is not None, "a participant's wave exists"
        out.append((participant, wave))
    return out


async def person_changed(uow: UnitOfWork[Views], person_id: UUID, event: PersonUpdated) -> None:
    """Record what changed on each linked participant (cause ``directory``)."""
    person = await uow.views.directory.person(uow.conn, person_id)
    if person is None:
        return
    values = directory_values(person)
    changes = {
        name: values[name]
        for name, sources in SOURCES.items()
        if touched(event.changed, sources) and (values[name] is not None or name in CLEARABLE)
    }
    profile = {k: v for k, v in changes.items() if k not in PERSONAL}
    personal = {k: v for k, v in changes.items() if k in PERSONAL}
    country = person.profile.country if touched(event.changed, (COUNTRY,)) else None
    for participant, wave in await _linked(uow, person):
        participant.follow_directory(wave, profile, personal, event.actor)
        if country is not None:
            participant.relocate(wave, country, event.actor)
        await uow.repo.add(participant)


async def person_left(uow: UnitOfWork[Views], person_id: UUID, actor: Actor) -> None:
    """The person left the organisation: they withdraw from every wave not ended."""
    person = await uow.views.directory.person(uow.conn, person_id)
    if person is None:
        return
    for participant, wave in await _linked(uow, person):
        participant.leave_organisation(wave, actor)
        await uow.repo.add(participant)

