"""Command handlers: load the aggregates, check the caller may act on them,
let the domain decide, save the new events (and the read tables) in the
caller's transaction.

Authorisation happens here, on the aggregates as the log has them: an object
of another organisation, or of a country the caller does not hold, is
``NotFound`` (404), exactly like an object that does not exist.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from libs.auth.principal import Principal
from libs.domain.commands import actor_of, check_version
from libs.domain.repository import UnitOfWork
from libs.events.contexts.enrollment import ProgrammeSettings
from services.enrollment.domain.errors import DuplicateEnrolment, InvalidInput, Issues, NotFound
from services.enrollment.domain.participant import Participant
from services.enrollment.domain.programme import Programme
from services.enrollment.domain.values import default_settings
from services.enrollment.domain.wave import Wave
from services.enrollment.service_layer import commands, directory
from services.enrollment.service_layer.views import is_self

# -- loading what the caller may act on ----------------------------------------------


async def load_programme(uow: UnitOfWork, principal: Principal, programme_id: UUID) -> Programme:
    return programme_seen(principal, programme_id, await uow.repo.get(Programme, programme_id))


def programme_seen(principal: Principal, programme_id: UUID, programme: Programme | None) -> Programme:
    """The programme, if it exists and is the caller's organisation's; else 404."""
    if programme is None or programme.organisation != principal.organisation:
        raise NotFound("programme", programme_id)
    return programme


async def load_wave(uow: UnitOfWork, principal: Principal, wave_id: UUID, *, lock: bool = False) -> Wave:
    """``lock``: hold the wave's read row until commit, so that enrolments and
    the closing of the wave's enrolment serialise."""
    if lock:
        await uow.views.lock_wave(uow.conn, wave_id)
    return wave_seen(principal, wave_id, await uow.repo.get(Wave, wave_id))


def wave_seen(principal: Principal, wave_id: UUID, wave: Wave | None) -> Wave:
    """The wave, if it exists and the caller may see it; else 404."""
    if wave is None or not principal.can_see(wave.organisation, wave.country):
        raise NotFound("wave", wave_id)
    return wave


async def load_participant(
    uow: UnitOfWork, principal: Principal, participant_id: UUID, *, allow_self: bool
) -> tuple[Participant, Programme, Wave]:
    participant = await uow.repo.get(Participant, participant_id)
    if participant is None or not (
        principal.can_see(participant.organisation, participant.country)
        or (allow_self and is_self(principal, participant_id, participant.organisation))
    ):
        raise NotFound("participant", participant_id)
    programme, wave = await uow.repo.get_many((Programme, participant.programme_id), (Wave, participant.wave_id))
    assert programme is not None and wave is not None, "a participant's programme and wave exist"
    return participant, programme, wave


async def refuse_duplicate_outside(uow: UnitOfWork, principal: Principal, programme_id: UUID, employee_ref: str) -> None:
    """409 naming the existing enrolment (by id only if the caller may see
    it), read from outside the command's transaction (which failed)."""
    assert uow.pool is not None, "enrollment's units of work carry the pool"
    enrolled = await uow.views.active_enrolments(uow.pool, programme_id, [employee_ref])
    refuse_enrolled(principal, employee_ref, enrolled.get(employee_ref))


def refuse_enrolled(principal: Principal, employee_ref: str, enrolled: tuple[UUID, str] | None) -> None:
    """409 if ``enrolled`` (participant id, country) names an active enrolment."""
    if enrolled is not None:
        participant_id, country = enrolled
        raise DuplicateEnrolment(employee_ref, participant_id, visible=principal.can_see_country(country))


# -- programmes ------------------------------------------------------------------------


async def create_programme(uow: UnitOfWork, principal: Principal, cmd: commands.CreateProgramme) -> UUID:
    settings = ProgrammeSettings.model_validate({**default_settings(cmd.mode).model_dump(), **cmd.settings})
    try:
        programme = Programme.create(
            programme_id=uuid4(),
            organisation=principal.organisation,
            name=cmd.name,
            mode=cmd.mode,
            settings=settings,
            actor=actor_of(principal),
        )
    except InvalidInput as exc:
        raise exc.under("settings") from None
    await uow.repo.add(programme)
    return programme.id


async def change_programme_settings(
    uow: UnitOfWork, principal: Principal, cmd: commands.ChangeProgrammeSettings
) -> UUID:
    programme = await load_programme(uow, principal, cmd.programme_id)
    check_version(programme, cmd.expected_version)
    programme.change_settings(cmd.changes, actor_of(principal))
    await uow.repo.add(programme)
    return programme.id


# -- waves -------------------------------------------------------------------------------


async def open_wave(uow: UnitOfWork, principal: Principal, cmd: commands.OpenWave) -> UUID:
    programme = await load_programme(uow, principal, cmd.programme_id)
    # A committee opens waves in its own countries only (403: it named the country itself).
    principal.require_country(programme.organisation, cmd.plan.country)
    wave = Wave.open(wave_id=uuid4(), programme=programme, plan=cmd.plan, actor=actor_of(principal))
    await uow.repo.add(wave)
    return wave.id


async def close_wave_enrolment(uow: UnitOfWork, principal: Principal, cmd: commands.CloseWaveEnrolment) -> UUID:
    wave = await load_wave(uow, principal, cmd.wave_id)
    wave.close_enrolment(actor_of(principal))
    await uow.repo.add(wave)
    return wave.id


async def end_wave(uow: UnitOfWork, principal: Principal, cmd: commands.EndWave) -> UUID:
    wave = await load_wave(uow, principal, cmd.wave_id)
    wave.end(actor_of(principal))
    await uow.repo.add(wave)
    return wave.id


# -- participants ------------------------------------------------------------------------


async def enrol(uow: UnitOfWork, principal: Principal, cmd: commands.Enrol) -> UUID:
    employee_ref = cmd.enrolment.employee_ref
    # What load_wave(lock=True), load_programme and a duplicate check find, in
    # two round trips instead of four (the enrolment is the busiest write);
    # the same answers, in the same order: 404 wave, 404 programme, 409.
    held = await uow.views.hold_wave_for_enrolment(uow.conn, cmd.wave_id, employee_ref)
    if held is None:
        raise NotFound("wave", cmd.wave_id)
    programme_id, enrolled = held
    found_wave, found_programme = await uow.repo.get_many((Wave, cmd.wave_id), (Programme, programme_id))
    wave = wave_seen(principal, cmd.wave_id, found_wave)
    programme = programme_seen(principal, programme_id, found_programme)
    refuse_enrolled(principal, employee_ref, enrolled)
    participant = Participant.enrol(
        participant_id=uuid4(), programme=programme, wave=wave, enrolment=cmd.enrolment, actor=actor_of(principal)
    )
    try:
        await uow.repo.add(participant)
    except DuplicateEnrolment:
        # A concurrent enrolment of the same person won the unique index; it
        # has committed by now, so it can be named: from outside this
        # transaction, which the refused insert aborted.
        await refuse_duplicate_outside(uow, principal, programme.id, employee_ref)
        raise
    return participant.id


async def enrol_from_directory(uow: UnitOfWork, principal: Principal, cmd: commands.EnrolFromDirectory) -> UUID:
    """Enrol a person of the organisation's HR directory, by employee reference."""
    await load_wave(uow, principal, cmd.wave_id)  # a wave the caller may not see: 404 before anything
    person = await directory.provisioned(uow, principal.organisation, cmd.employee_ref)
    enrolment = directory.directory_enrolment(person, cmd.given)
    return await enrol(uow, principal, commands.Enrol(cmd.wave_id, enrolment))


async def update_profile(uow: UnitOfWork, principal: Principal, cmd: commands.UpdateProfile) -> UUID:
    participant, programme, wave = await load_participant(uow, principal, cmd.participant_id, allow_self=False)
    check_version(participant, cmd.expected_version)
    participant.update_profile(programme, wave, cmd.profile, cmd.personal, actor_of(principal))
    await uow.repo.add(participant)
    return participant.id


async def withdraw(uow: UnitOfWork, principal: Principal, cmd: commands.Withdraw) -> UUID:
    participant, _, wave = await load_participant(uow, principal, cmd.participant_id, allow_self=True)
    participant.withdraw(wave, cmd.reason, actor_of(principal))
    await uow.repo.add(participant)
    return participant.id


async def transfer(uow: UnitOfWork, principal: Principal, cmd: commands.Transfer) -> UUID:
    """Move a participant to another wave: the caller holds both countries
    (a committee moves people between its own countries only; either one
    it does not hold is a 404, like an id that does not exist)."""
    participant, _, wave = await load_participant(uow, principal, cmd.participant_id, allow_self=False)
    to = await load_wave(uow, principal, cmd.wave_id, lock=True)
    participant.transfer(wave, to, actor_of(principal))
    await uow.repo.add(participant)
    return participant.id


async def transfer_many(uow: UnitOfWork, principal: Principal, cmd: commands.TransferMany) -> list[UUID]:
    """Move these participants of a wave into another, all or none (e.g. a
    wave's waitlist carried over into the country's next wave)."""
    wave = await load_wave(uow, principal, cmd.wave_id)
    to = await load_wave(uow, principal, cmd.to_wave_id, lock=True)
    issues = Issues()
    issues.check(to.programme_id == wave.programme_id, "to_wave_id", "A wave of the same programme.")
    issues.check(to.id != wave.id, "to_wave_id", "Another wave than the one they leave.")
    issues.raise_if_any()
    moved = []
    for i, participant_id in enumerate(cmd.participant_ids):
        participant = await uow.repo.get(Participant, participant_id)
        if participant is None or participant.wave_id != wave.id or participant.organisation != principal.organisation:
            issues.add(f"participant_ids.{i}", "Not a participant of this wave.")
        elif participant_id in cmd.participant_ids[:i]:
            issues.add(f"participant_ids.{i}", "Listed twice.")
        else:
            participant.transfer(wave, to, actor_of(principal))
            moved.append(participant)
    issues.raise_if_any()
    await uow.repo.add(*moved)
    return [p.id for p in moved]


async def erase(uow: UnitOfWork, principal: Principal, cmd: commands.Erase) -> UUID:
    participant, _, _ = await load_participant(uow, principal, cmd.participant_id, allow_self=False)
    participant.erase(actor_of(principal))
    await uow.repo.add(participant)
    return participant.id


async def answer_needs(uow: UnitOfWork, principal: Principal, cmd: commands.AnswerNeeds) -> UUID:
    participant, programme, wave = await load_participant(uow, principal, cmd.participant_id, allow_self=True)
    participant.answer_needs(programme, wave, cmd.answers, cmd.comments, actor_of(principal))
    await uow.repo.add(participant)
    return participant.id


async def assess_qualification(uow: UnitOfWork, principal: Principal, cmd: commands.AssessQualification) -> UUID:
    participant, programme, wave = await load_participant(uow, principal, cmd.participant_id, allow_self=False)
    participant.assess_qualification(programme, wave, cmd.scores, actor_of(principal))
    await uow.repo.add(participant)
    return participant.id
