"""The choice flow: a mentee sees its top-k suggestions (explained), ranks
the mentors it wants, and its first available choice is proposed; when that
mentor (or anyone) declines, the next choice still available is proposed
automatically.

A choice looks at the mentors of the mentee's own wave. Seats are counted as
in runs (proposed + formed pairs), under the programme's seat lock, so a
mentor is never offered beyond its capacity.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from libs.auth.principal import Principal
from libs.domain.commands import actor_of
from libs.domain.repository import UnitOfWork
from libs.events.contexts.enrollment import Actor
from libs.events.contexts.matching import ProposalOrigin
from services.matching.adapters.mapping import to_participant, to_policy
from services.matching.domain import MatchingPolicy, PairConstraints, Participant, explain, suggest_top_k
from services.matching.domain.errors import IllegalTransition, InvalidRequest, NotFound
from services.matching.domain.pair import Pair
from services.matching.domain.profiles import Role
from services.matching.service_layer.access import is_self
from services.matching.service_layer.explanations import criterion_points
from services.matching.service_layer.people import by_id, capacity_of, mentee_of, pair_ref


@dataclass
class _Choice:
    """What a choice for one mentee sees."""

    mentee_row: dict[str, Any]
    mentee: Participant
    mentors: dict[str, dict[str, Any]]  # matchable mentors of the mentee's wave, by id
    taken: dict[str, int]
    policy: MatchingPolicy
    constraints: PairConstraints

    def remaining(self, mentor_id: str) -> int:
        return capacity_of(self.mentors[mentor_id]) - self.taken.get(mentor_id, 0)

    def feasible(self, mentor_id: str) -> bool:
        """No hard constraint rules the pair out (seats are counted apart)."""
        return explain(self.mentee, self.full_mentor(mentor_id), self.policy, self.constraints).feasible

    def full_mentor(self, mentor_id: str) -> Participant:
        """The mentor with its whole capacity (seats taken are counted apart)."""
        row = self.mentors[mentor_id]
        return to_participant(row, capacity_of(row), row["starts_on"])


async def load_mentee(uow: UnitOfWork, principal: Principal, mentee_id: UUID) -> dict[str, Any]:
    """The mentee's pool row, if the caller may act for it (else 404)."""
    row = await uow.views.candidate(uow.conn, principal.organisation, mentee_id)
    if row is None or row["role"] != Role.MENTEE.value:
        raise NotFound("mentee", mentee_id)
    if not (principal.can_see(row["organisation"], row["country"]) or is_self(principal, mentee_id)):
        raise NotFound("mentee", mentee_id)
    return row


async def _choice(uow: UnitOfWork, principal_org: str, mentee_row: dict[str, Any]) -> _Choice:
    if not mentee_row["matchable"]:
        raise IllegalTransition("This mentee is not in the candidate pool (withdrawn, or wants no theme).")
    programme = await uow.views.programme(uow.conn, principal_org, mentee_row["programme_id"])
    if programme is None:
        raise NotFound("programme", mentee_row["programme_id"])
    mentors = by_id(await uow.views.matchable(uow.conn, [mentee_row["wave_id"]], Role.MENTOR.value))
    constraints, _ = await uow.views.constraints(uow.conn, [mentee_row["participant_id"]])
    return _Choice(
        mentee_row=mentee_row,
        mentee=mentee_of(mentee_row),
        mentors=mentors,
        taken=await uow.views.seats_taken(uow.conn, [UUID(m) for m in mentors]),
        policy=to_policy(programme["mode"], programme["settings"]),
        constraints=constraints,
    )


async def suggestions(uow: UnitOfWork, principal: Principal, mentee_id: UUID, k: int | None) -> dict[str, Any]:
    """The best ``k`` mentors with a free seat, best first, each with its breakdown."""
    choice = await _choice(uow, principal.organisation, await load_mentee(uow, principal, mentee_id))
    mentors = [choice.full_mentor(m) for m in choice.mentors]
    found = suggest_top_k(choice.mentee, mentors, choice.policy, choice.constraints, k=k, taken=choice.taken)
    return {
        "mentee_id": str(mentee_id),
        "suggestions": [
            {
                "mentor_id": s.mentor_id,
                "wave_id": str(choice.mentors[s.mentor_id]["wave_id"]),
                "country": choice.mentors[s.mentor_id]["country"],
                "score": s.score,
                "remaining_capacity": s.remaining_capacity,
                "breakdown": [c.model_dump(mode="json") for c in criterion_points(s.breakdown)],
            }
            for s in found
        ],
    }


async def choose(uow: UnitOfWork, principal: Principal, mentee_id: UUID, mentor_ids: Sequence[UUID]) -> UUID:
    """Propose the first of the ranked mentors with a free seat; the others
    wait as next choices. A mentor who is not a candidate of the mentee's
    wave, or whom a hard constraint rules out, is bad input (422)."""
    mentee_row = await load_mentee(uow, principal, mentee_id)
    await uow.views.lock_seats(uow.conn, mentee_row["programme_id"])
    if await uow.views.busy_mentees(uow.conn, [mentee_id]):
        raise IllegalTransition("This mentee has a proposed or formed pair already.")
    choice = await _choice(uow, principal.organisation, mentee_row)
    ranked = [str(m) for m in mentor_ids]
    for i, mentor_id in enumerate(ranked):
        if mentor_id not in choice.mentors:
            raise InvalidRequest(f"mentor_ids.{i}", "Not a matchable mentor of the mentee's wave.")
        breakdown = explain(choice.mentee, choice.full_mentor(mentor_id), choice.policy, choice.constraints)
        if not breakdown.feasible:
            raise InvalidRequest(f"mentor_ids.{i}", "; ".join(breakdown.reasons))
    pair = _propose_first_free(choice, ranked, actor_of(principal), principal.organisation, follows=None)
    if pair is None:
        raise IllegalTransition("Every chosen mentor's seats are held now: ask for new suggestions.")
    await uow.repo.add(pair)
    return pair.id


async def propose_next(uow: UnitOfWork, declined: Pair, actor: Actor) -> Pair | None:
    """After a choice was declined: propose the mentee's next choice that is
    still free and feasible (the declined pair never is again)."""
    proposal = declined.proposal
    if proposal.origin is not ProposalOrigin.CHOICE or not proposal.next_choices:
        return None
    mentee_row = await uow.views.candidate(uow.conn, declined.organisation, proposal.people.mentee_id)
    if mentee_row is None or not mentee_row["matchable"]:
        return None
    await uow.views.lock_seats(uow.conn, proposal.programme_id)
    if await uow.views.busy_mentees(uow.conn, [proposal.people.mentee_id]):
        return None
    choice = await _choice(uow, declined.organisation, mentee_row)
    ranked = [str(m) for m in proposal.next_choices if str(m) in choice.mentors]
    ranked = [m for m in ranked if choice.feasible(m)]
    pair = _propose_first_free(choice, ranked, actor, declined.organisation, follows=declined.id)
    if pair is not None:
        await uow.repo.add(pair)
    return pair


def _propose_first_free(
    choice: _Choice, ranked: list[str], actor: Actor, organisation: str, follows: UUID | None
) -> Pair | None:
    for i, mentor_id in enumerate(ranked):
        if choice.remaining(mentor_id) <= 0:
            continue
        breakdown = explain(choice.mentee, choice.full_mentor(mentor_id), choice.policy, choice.constraints)
        return Pair.propose(
            pair_id=uuid.uuid4(),
            organisation=organisation,
            programme_id=choice.mentee_row["programme_id"],
            people=pair_ref(choice.mentee_row, choice.mentors[mentor_id]),
            origin=ProposalOrigin.CHOICE,
            score=breakdown.total,
            breakdown=criterion_points(breakdown),
            actor=actor,
            next_choices=[UUID(m) for m in ranked[i + 1 :]],
            follows_pair_id=follows,
        )
    return None
