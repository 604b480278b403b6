"""A wave's waitlist and the pairs offered when seats free up (issue 19).

A run leaves some mentees unmatched: with code ``capacity_exhausted`` (their
feasible mentors' seats went to others) or ``no_feasible_partner`` (no
mentor fits them), they wait on their wave's waitlist, in the order they
first waited (``adapters/read_tables.py`` keeps it from matching's own
events: ``MatchingRunCompleted`` puts them on, ``PairProposed`` takes them
off). Who is listed is decided at read time: still matchable, holding no
open pair, in the wave the person is in now: a mentee transferred to another
wave (``POST /enrollment/v1/participants/{id}:transfer``, or the whole
waitlist carried over into the country's next wave with
``POST /enrollment/v1/waves/{id}/participants:transfer``) waits there,
keeping its place (``since``), ahead of that wave's own unmatched.

When capacity frees (a pair dissolved or declined, a mentor qualified or
enrolled), ``offers`` gives the best next pair for each waiting mentee, in
waitlist order, computed exactly as the mentee's suggestions are (the same
``suggest_top_k`` with the same policy and constraints), a seat offered to
an earlier mentee counting as taken for the later ones. The committee
proposes an offer with ``POST /v1/mentees/{mentee_id}/choices``
``{"mentor_ids": [...]}``, which takes the mentee off the list.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from libs.auth.principal import Principal
from services.matching.domain import suggest_top_k
from services.matching.domain.errors import NotFound
from services.matching.domain.profiles import Role
from services.matching.service_layer.choice import _choice
from services.matching.service_layer.explanations import criterion_points
from libs.domain.repository import UnitOfWork


async def waiting(uow: UnitOfWork, principal: Principal, wave_id: UUID) -> list[dict[str, Any]]:
    """The wave's waitlist, first in line first (404: a wave the caller may not see)."""
    wave = (await uow.views.waves(uow.conn, principal.organisation, [wave_id])).get(wave_id)
    if wave is None or not principal.can_see(wave["organisation"], wave["country"]):
        raise NotFound("wave", wave_id)
    s = uow.views.s
    rows = await uow.conn.fetch(
        f"""SELECT w.mentee_id, w.reason, w.run_id, w.since FROM {s}.waitlist w
            JOIN {s}.candidates c ON c.participant_id = w.mentee_id
            WHERE c.wave_id = $1 AND c.matchable AND c.role = $2
              AND NOT EXISTS (SELECT 1 FROM {s}.pairs p WHERE p.mentee_id = w.mentee_id
                              AND p.status IN ('proposed', 'formed'))
            ORDER BY w.since, w.mentee_id""",
        wave_id,
        Role.MENTEE.value,
    )
    return [{"position": i, **dict(r)} for i, r in enumerate(rows, start=1)]


async def offers(uow: UnitOfWork, principal: Principal, wave_id: UUID) -> list[dict[str, Any]]:
    """The best free mentor for each waiting mentee, in waitlist order."""
    offered: Counter[str] = Counter()
    result = []
    for entry in await waiting(uow, principal, wave_id):
        mentee_row = await uow.views.candidate(uow.conn, principal.organisation, entry["mentee_id"])
        assert mentee_row is not None, "a listed mentee is in the pool"
        choice = await _choice(uow, principal.organisation, mentee_row)
        taken = Counter(choice.taken) + offered
        mentors = [choice.full_mentor(m) for m in choice.mentors]
        found = suggest_top_k(choice.mentee, mentors, choice.policy, choice.constraints, k=1, taken=taken)
        if not found:
            continue
        best = found[0]
        offered[best.mentor_id] += 1
        result.append({
            "position": entry["position"], "mentee_id": entry["mentee_id"], "reason": entry["reason"],
            "mentor_id": best.mentor_id, "score": best.score,
            "breakdown": [c.model_dump(mode="json") for c in criterion_points(best.breakdown)],
        })  # fmt: skip
    return result
