"""The mentor's side of the choice flow: the mentees a mentor would suit
best, and the mentor's interest in one of them.

A mentor sees the free mentees of its own wave for whom no hard constraint
rules it out, best first, scored exactly as the mentee's suggestions and a
run score the pair (one definition: ``explain`` with the mentor's whole
capacity). Interest is recorded as ``MentorInterestExpressed`` and shown,
not scored: HR and the committee see it in the mentee's suggestions
(``mentor_interested``) and the mentor in its view; the mentee still ranks
and HR still decides.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from libs.auth.principal import Principal
from libs.domain.commands import actor_of
from libs.domain.repository import Change, UnitOfWork
from libs.events.contexts.matching import MentorInterestExpressed
from services.matching.adapters.mapping import to_policy
from services.matching.domain import explain
from services.matching.domain.errors import IllegalTransition, InvalidRequest, NotFound
from services.matching.domain.profiles import Role
from services.matching.service_layer.access import is_self
from services.matching.service_layer.choice import load_candidate
from services.matching.service_layer.explanations import criterion_points
from services.matching.service_layer.people import by_id, capacity_of, mentee_of, whole_mentor

#: Interest stream ids derive from the mentor and the mentee: one stream per couple.
INTERESTS = uuid.UUID("0b7d4f7e-3f3c-4a39-9d6e-5c1f7a2e8b40")


async def suggested_mentees(uow: UnitOfWork, principal: Principal, mentor_id: UUID, k: int | None) -> dict[str, Any]:
    """The ``k`` free mentees of the mentor's wave it would suit best, each
    with its breakdown and whether the mentor said it is interested."""
    mentor_row = await load_candidate(uow, principal, mentor_id, Role.MENTOR)
    ranked, policy_k = await _feasible_mentees(uow, mentor_row)
    interested = await uow.views.interesting_mentees(uow.conn, mentor_id)
    taken = (await uow.views.seats_taken(uow.conn, [mentor_id])).get(str(mentor_id), 0)
    return {
        "mentor_id": mentor_id,
        "remaining_capacity": max(capacity_of(mentor_row) - taken, 0),
        "mentees": [
            {
                "mentee_id": mentee_id,
                "score": breakdown.total,
                "breakdown": [c.model_dump(mode="json") for c in criterion_points(breakdown)],
                "interest_expressed": mentee_id in interested,
            }
            for mentee_id, breakdown in ranked[: k or policy_k]
        ],
    }


async def express_interest(uow: UnitOfWork, principal: Principal, mentor_id: UUID, mentee_id: UUID) -> dict[str, Any]:
    """The mentor itself says it would like to mentor this mentee: a free
    mentee of its wave whom no hard constraint rules out (else 422); twice: 409."""
    if not is_self(principal, mentor_id):
        raise NotFound("mentor", mentor_id)  # HR may look, only the mentor speaks for itself
    mentor_row = await load_candidate(uow, principal, mentor_id, Role.MENTOR)
    ranked, _ = await _feasible_mentees(uow, mentor_row)
    mentees = dict(ranked)
    if str(mentee_id) not in mentees:
        raise InvalidRequest("mentee_id", "Not a free mentee of your wave whom you may be proposed to.")
    mentee_row = await uow.views.candidate(uow.conn, principal.organisation, mentee_id)
    assert mentee_row is not None, "a ranked mentee is in the pool"
    interest_id = uuid.uuid5(INTERESTS, f"{mentor_id}/{mentee_id}")
    if await uow.repo.version(interest_id):
        raise IllegalTransition("You expressed interest in this mentee already.")
    event = MentorInterestExpressed(
        interest_id=interest_id,
        programme_id=mentor_row["programme_id"],
        mentee_id=mentee_id,
        mentor_id=mentor_id,
        country=mentee_row["country"],
        actor=actor_of(principal),
    )
    await uow.repo.save(Change(interest_id, 0, principal.organisation, mentee_row["country"], [event]))  # a new stream
    return {**event.model_dump(mode="json", exclude={"actor"}), "score": mentees[str(mentee_id)].total}


async def _feasible_mentees(uow: UnitOfWork, mentor_row: dict[str, Any]) -> tuple[list[tuple[str, Any]], int]:
    """(mentee id, breakdown) of the free mentees of the mentor's wave the
    mentor may be proposed to, best first (ties by id); and the programme's k."""
    if not mentor_row["matchable"]:
        raise IllegalTransition("This mentor is not in the candidate pool (withdrawn, or not qualified).")
    programme = await uow.views.programme(uow.conn, mentor_row["organisation"], mentor_row["programme_id"])
    if programme is None:
        raise NotFound("programme", mentor_row["programme_id"])
    policy = to_policy(programme["mode"], programme["settings"])
    rows = by_id(await uow.views.matchable(uow.conn, [mentor_row["wave_id"]], Role.MENTEE.value))
    busy = await uow.views.busy_mentees(uow.conn, [UUID(m) for m in rows])
    free = [m for m in rows if m not in busy]
    constraints, _ = await uow.views.constraints(uow.conn, [UUID(m) for m in free])
    mentor = whole_mentor(mentor_row)
    scored = [(m, explain(mentee_of(rows[m]), mentor, policy, constraints)) for m in free]
    ranked = sorted(((m, b) for m, b in scored if b.feasible), key=lambda mb: (-mb[1].total, mb[0]))
    return ranked, policy.top_k
