"""A pair's life after its proposal: accept (each person), confirm (HR),
decline, dissolve, complete; HR exclusions; and what a withdrawal from the
programme does to the person's pairs.

Authorisation is checked on the pair as its stream has it: a pair the caller
may not see is "not found" (404). Illegal transitions are 409
(``IllegalTransition``), concurrent changes of one pair 409 too (the store's
expected version).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from libs.auth.principal import PARTICIPANT, Principal
from libs.domain.commands import actor_of
from libs.domain.repository import Change, UnitOfWork
from libs.events.contexts.enrollment import (
    Actor,
    ParticipantEvent,
    ParticipantTransferred,
    ParticipantWithdrew,
    WaveEnded,
    WithdrawalCause,
)
from libs.events.contexts.matching import DissolutionReason, ExclusionLifted, PairExcluded, Side
from services.matching.domain.errors import IllegalTransition, InvalidRequest, NotFound
from services.matching.domain.history import History
from services.matching.domain.pair import Pair, PairStatus
from services.matching.domain.profiles import Role
from services.matching.service_layer.choice import load_mentee, propose_next

#: Exclusion stream ids derive from the two people: one stream per excluded pair.
EXCLUSIONS = uuid.UUID("6f1c2a52-5d0c-4f0e-9a59-2b1d8f0c7e11")


async def load_pair(uow: UnitOfWork, principal: Principal, pair_id: UUID) -> tuple[Pair, Side]:
    """The pair and the side the caller acts for (HR roles: ``Side.HR``)."""
    pair = await uow.repo.get(Pair, pair_id)
    if pair is not None and pair.organisation == principal.organisation:
        if principal.can_see_country(pair.country):
            return pair, Side.HR
        side = pair.side_of(principal.subject) if principal.has_role(PARTICIPANT) else None
        if side is not None:
            return pair, side
    raise NotFound("pair", pair_id)


async def accept(uow: UnitOfWork, principal: Principal, pair_id: UUID) -> UUID:
    """A person of the pair accepts it (its own side); HR confirms instead."""
    pair, side = await load_pair(uow, principal, pair_id)
    if side is Side.HR:
        raise NotFound("pair", pair_id)  # HR is no side of the pair
    pair.accept(side, actor_of(principal))
    await uow.repo.add(pair)
    return pair.id


async def confirm(uow: UnitOfWork, principal: Principal, pair_id: UUID) -> UUID:
    """HR confirms the pair for both people: it is formed."""
    return await _as_hr(uow, principal, pair_id, lambda pair: pair.accept(Side.HR, actor_of(principal)))


async def decline(uow: UnitOfWork, principal: Principal, pair_id: UUID, note: str | None) -> UUID:
    """Decline a proposal (a person for its side, HR for both); the seat is
    free again and, for a mentee's choice, its next choice is proposed."""
    pair, side = await load_pair(uow, principal, pair_id)
    await end_proposal(uow, pair, side, actor_of(principal), note)
    return pair.id


async def end_proposal(uow: UnitOfWork, pair: Pair, side: Side, actor: Actor, note: str | None = None) -> None:
    pair.decline(side, actor, note)
    await uow.repo.add(pair)
    await propose_next(uow, pair, actor)


async def dissolve(
    uow: UnitOfWork, principal: Principal, pair_id: UUID, reason: DissolutionReason, note: str | None
) -> UUID:
    """End a formed pair early; both people return to the pool and are never
    proposed to each other again."""
    pair, side = await load_pair(uow, principal, pair_id)
    pair.dissolve(reason, side, actor_of(principal), note)
    await uow.repo.add(pair)
    return pair.id


async def complete(uow: UnitOfWork, principal: Principal, pair_id: UUID) -> UUID:
    return await _as_hr(uow, principal, pair_id, lambda pair: pair.complete(actor_of(principal)))


async def load_as_hr(uow: UnitOfWork, principal: Principal, pair_id: UUID) -> Pair:
    """The pair, if the caller is HR of its country (else 404)."""
    pair, side = await load_pair(uow, principal, pair_id)
    if side is not Side.HR:
        raise NotFound("pair", pair_id)
    return pair


async def _as_hr(uow: UnitOfWork, principal: Principal, pair_id: UUID, change: Callable[[Pair], None]) -> UUID:
    """A change only HR (of the pair's country) makes."""
    pair = await load_as_hr(uow, principal, pair_id)
    change(pair)
    await uow.repo.add(pair)
    return pair.id


@dataclass(frozen=True)
class Exclusion:
    mentee_id: UUID
    mentor_id: UUID
    note: str | None = None


async def exclude(uow: UnitOfWork, principal: Principal, exclusion: Exclusion) -> UUID:
    """HR rules a pair out for good (a second exclusion of it is a 409).

    Both people must be visible to the caller: a committee naming another
    country's mentor gets the same 404 as for an id that does not exist or is
    no mentor, so it can neither write about that person nor probe which ids
    are mentors. Only a mentor it sees may be "not of the programme" (422)."""
    mentee = await load_mentee(uow, principal, exclusion.mentee_id)
    mentor = await uow.views.candidate(uow.conn, principal.organisation, exclusion.mentor_id)
    if (
        mentor is None
        or mentor["role"] != Role.MENTOR.value
        or not principal.can_see(mentor["organisation"], mentor["country"])
    ):
        raise NotFound("mentor", exclusion.mentor_id)
    if mentor["programme_id"] != mentee["programme_id"]:
        raise InvalidRequest("mentor_id", "Not a mentor of the mentee's programme.")
    exclusion_id = uuid.uuid5(EXCLUSIONS, f"{exclusion.mentee_id}/{exclusion.mentor_id}")
    history = await uow.repo.get(History, exclusion_id)
    if history is not None and isinstance(history.events[-1], PairExcluded):
        raise IllegalTransition("This pair is excluded already.")
    version = 0 if history is None else history.version
    event = PairExcluded(
        exclusion_id=exclusion_id,
        programme_id=mentee["programme_id"],
        mentee_id=exclusion.mentee_id,
        mentor_id=exclusion.mentor_id,
        country=mentee["country"],
        note=exclusion.note,
        actor=actor_of(principal),
    )
    await uow.repo.save(Change(exclusion_id, version, principal.organisation, mentee["country"], [event]))
    return exclusion_id


async def lift_exclusion(uow: UnitOfWork, principal: Principal, exclusion_id: UUID, reason: str) -> ExclusionLifted:
    """HR of the mentee's country lifts an exclusion in force, with a reason
    (one not in force: 409); runs and choices may propose the pair again."""
    history = await uow.repo.get(History, exclusion_id)
    events = () if history is None else history.events
    excluded = next((e for e in reversed(events) if isinstance(e, PairExcluded)), None)
    if history is None or excluded is None or not principal.can_see(history.organisation, excluded.country):
        raise NotFound("exclusion", exclusion_id)
    if not isinstance(events[-1], PairExcluded):
        raise IllegalTransition("This exclusion is lifted already.")
    event = ExclusionLifted(
        **excluded.model_dump(include={"exclusion_id", "programme_id", "mentee_id", "mentor_id", "country"}),
        reason=reason,
        actor=actor_of(principal),
    )
    await uow.repo.save(Change(exclusion_id, history.version, history.organisation, excluded.country, [event]))
    return event


async def after_withdrawal(uow: UnitOfWork, withdrawal: ParticipantEvent) -> None:
    """The person left the programme (withdrew, or was erased) or moved to
    another wave (transfer): its proposals are declined for its side (a
    mentee's next choice is proposed when its mentor left; a mentee who moved
    is matched again in its new wave) and its formed pairs dissolved with
    reason ``left_programme`` (``transferred``; ``left_company`` when the HR
    directory said the person left the organisation). The actor is whoever
    recorded the departure (approved the transfer)."""
    person = str(withdrawal.participant_id)
    moved = isinstance(withdrawal, ParticipantTransferred)
    reason = DissolutionReason.TRANSFERRED if moved else DissolutionReason.LEFT_PROGRAMME
    if isinstance(withdrawal, ParticipantWithdrew) and withdrawal.cause is WithdrawalCause.LEFT_ORGANISATION:
        reason = DissolutionReason.LEFT_COMPANY
    for pair_id in await uow.views.open_pairs_of(uow.conn, withdrawal.participant_id):
        pair = await uow.repo.get(Pair, pair_id)
        assert pair is not None, "an open pair's stream exists"
        side = pair.side_of(person)
        assert side is not None, "the withdrawn person is in its open pairs"
        if pair.status is PairStatus.PROPOSED and not (moved and side is Side.MENTEE):
            await end_proposal(uow, pair, side, withdrawal.actor)
            continue
        if pair.status is PairStatus.PROPOSED:
            pair.decline(side, withdrawal.actor)
        else:
            pair.dissolve(reason, side, withdrawal.actor)
        await uow.repo.add(pair)


async def after_wave_ended(uow: UnitOfWork, ended: WaveEnded) -> None:
    """The wave is over (its committee ended it, or its calendar did): its
    formed pairs are completed (evaluation assigns their closing surveys on
    ``PairCompleted``) and its open proposals declined for both sides, with
    no next choice proposed in a wave that is over. The actor is whoever
    ended the wave."""
    for pair_id in await uow.views.open_pairs_in_wave(uow.conn, ended.wave_id):
        pair = await uow.repo.get(Pair, pair_id)
        assert pair is not None, "an open pair's stream exists"
        if pair.status is PairStatus.PROPOSED:
            pair.decline(Side.HR, ended.actor)
        else:
            pair.complete(ended.actor)
        await uow.repo.add(pair)
