"""Matching runs: the optimal pairs of one or several waves, recorded.

A run sees the matchable people of its waves who are not in a proposed or
formed pair, and each mentor's remaining seats. It respects HR pins (given
with the request), HR exclusions, earlier partners and declined proposals,
solves exactly (``domain.solve``), and records one ``MatchingRunCompleted``
plus one ``PairProposed`` per pair, atomically. The same inputs give the same
pairs and the same ``policy_digest`` (a preview shows them without recording).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import orjson

from libs.auth.principal import HR_ADMIN, Forbidden, Principal
from libs.domain.commands import actor_of
from libs.domain.repository import Change, UnitOfWork
from libs.events.contexts.matching import (
    MatchingRunCompleted,
    ProposalOrigin,
    RunInputs,
    RunPair,
    RunUnmatched,
    UnmatchedCode,
)
from libs.observability.metrics import MATCHING_RUN_DURATION
from services.matching.adapters.mapping import to_policy
from services.matching.domain import (
    InvalidPin,
    MatchingPolicy,
    MatchingResult,
    PairConstraints,
    Participant,
    explain,
    solve,
)
from services.matching.domain.errors import IllegalTransition, InvalidRequest, NotFound
from services.matching.domain.pair import Pair
from services.matching.domain.solver import UnmatchedReason
from services.matching.service_layer.explanations import criterion_points
from services.matching.service_layer.people import by_id, capacity_of, mentee_of, mentor_of, pair_ref

SERVICE = "matching"

_UNMATCHED_CODES = {
    UnmatchedReason.NO_FEASIBLE_MENTOR: UnmatchedCode.NO_FEASIBLE_PARTNER,
    UnmatchedReason.CAPACITY_EXHAUSTED: UnmatchedCode.CAPACITY_EXHAUSTED,
}


@dataclass(frozen=True)
class RunRequest:
    wave_ids: Sequence[UUID]
    objective: str | None = None  # None: the programme's
    pins: Sequence[tuple[UUID, UUID]] = ()  # (mentee, mentor)


@dataclass
class _Inputs:
    programme_id: UUID
    countries: list[str]
    policy: MatchingPolicy
    mentees: list[dict[str, Any]]
    mentors: list[dict[str, Any]]
    taken: dict[str, int]
    constraints: PairConstraints
    excluded: int
    settings_digest: str


async def run_matching(uow: UnitOfWork, principal: Principal, request: RunRequest, *, record: bool) -> dict[str, Any]:
    """Run (``record``) or preview a matching run; return the run's document."""
    inputs = await _gather(uow, principal, request)
    mentees = [mentee_of(r) for r in inputs.mentees]
    mentors = [mentor_of(r, inputs.taken) for r in inputs.mentors]
    started = time.perf_counter()
    outcome = "failed"
    try:
        result = solve(mentees, [m for m in mentors if m.capacity > 0], inputs.policy, inputs.constraints)
        outcome = "ok"
    except InvalidPin as exc:
        index = [(str(a), str(b)) for a, b in request.pins].index((exc.mentee_id, exc.mentor_id))
        raise InvalidRequest(f"pins.{index}", "; ".join(exc.reasons)) from None
    finally:
        MATCHING_RUN_DURATION.labels(SERVICE, outcome).observe(time.perf_counter() - started)
    duration_ms = (time.perf_counter() - started) * 1000
    run_id = uuid.uuid4()
    completed = MatchingRunCompleted(
        run_id=run_id,
        programme_id=inputs.programme_id,
        wave_ids=sorted(request.wave_ids),
        countries=inputs.countries,
        objective=inputs.policy.objective.value,
        inputs=_run_inputs(inputs, mentees, mentors),
        pairs=[
            RunPair(pair_id=_pair_id(run_id, p.mentee_id, p.mentor_id), mentee_id=p.mentee_id, mentor_id=p.mentor_id,
                    score=p.score, pinned=p.pinned)
            for p in result.pairs
        ],
        unmatched=_unmatched(result, mentors),
        total_score=result.total_score,
        optimal=result.proven_optimal,
        duration_ms=duration_ms,
        actor=actor_of(principal),
    )
    doc = completed.model_dump(mode="json", exclude={"actor"})
    if not record:
        return {**doc, "run_id": None, "pairs": [{**p, "pair_id": None} for p in doc["pairs"]], "recorded": False}
    pairs = _proposals(inputs, completed, {m.id: m for m in mentees}, {m.id: m for m in mentors}, principal)
    run = Change(run_id, 0, principal.organisation, _home(inputs.countries), [completed])  # a new stream
    await uow.repo.save(run, *(Change.of(pair) for pair in pairs))
    return {**doc, "recorded": True}


async def _gather(uow: UnitOfWork, principal: Principal, request: RunRequest) -> _Inputs:
    """Load and check what the run needs: its waves (visible, one programme,
    not ended), the programme, the candidates and the constraints."""
    waves = await uow.views.waves(uow.conn, principal.organisation, request.wave_ids)
    for wave_id in request.wave_ids:
        wave = waves.get(wave_id)
        if wave is None or not principal.can_see(wave["organisation"], wave["country"]):
            raise NotFound("wave", wave_id)
    programmes = {w["programme_id"] for w in waves.values()}
    if len(programmes) != 1:
        raise InvalidRequest("wave_ids", "All waves of a run belong to one programme.")
    countries = sorted({w["country"] for w in waves.values()})
    if len(countries) > 1 and not principal.has_role(HR_ADMIN):
        raise Forbidden("A cross-border run (waves of several countries) needs the hr_admin role.")
    ended = [str(w["wave_id"]) for w in waves.values() if w["status"] == "ended"]
    if ended:
        raise IllegalTransition(f"Wave {ended[0]} has ended: it cannot be matched any more.")
    programme_id = programmes.pop()
    programme = await uow.views.programme(uow.conn, principal.organisation, programme_id)
    if programme is None:
        raise NotFound("programme", programme_id)
    await uow.views.lock_seats(uow.conn, programme_id)
    mentees = await uow.views.matchable(uow.conn, request.wave_ids, "mentee")
    busy = await uow.views.busy_mentees(uow.conn, [m["participant_id"] for m in mentees])
    mentees = [m for m in mentees if str(m["participant_id"]) not in busy]
    mentors = await uow.views.matchable(uow.conn, request.wave_ids, "mentor")
    taken = await uow.views.seats_taken(uow.conn, [m["participant_id"] for m in mentors])
    _check_pins(request.pins, by_id(mentees), by_id(mentors), taken)
    pins = [(str(a), str(b)) for a, b in request.pins]
    constraints, excluded = await uow.views.constraints(uow.conn, [m["participant_id"] for m in mentees], pins)
    return _Inputs(
        programme_id=programme_id,
        countries=countries,
        policy=to_policy(programme["mode"], programme["settings"], request.objective),
        mentees=mentees,
        mentors=mentors,
        taken=taken,
        constraints=constraints,
        excluded=excluded,
        settings_digest=_digest({"mode": programme["mode"], "settings": programme["settings"]}),
    )


def _check_pins(pins: Sequence[tuple[UUID, UUID]], mentees: dict, mentors: dict, taken: dict[str, int]) -> None:
    for i, (mentee_id, mentor_id) in enumerate(pins):
        if str(mentee_id) not in mentees:
            raise InvalidRequest(f"pins.{i}.mentee_id", "Not a mentee of these waves who is free to be matched.")
        mentor = mentors.get(str(mentor_id))
        if mentor is None:
            raise InvalidRequest(f"pins.{i}.mentor_id", "Not a matchable mentor of these waves.")
        if capacity_of(mentor) <= taken.get(str(mentor_id), 0):
            raise InvalidRequest(f"pins.{i}.mentor_id", "Every seat of this mentor is held already.")


def _pair_id(run_id: UUID, mentee_id: str, mentor_id: str) -> UUID:
    return uuid.uuid5(run_id, f"{mentee_id}/{mentor_id}")


def _home(countries: list[str]) -> str | None:
    """The run's envelope country: its one country, none when cross-border."""
    return countries[0] if len(countries) == 1 else None


def _canonical(value: Any) -> Any:
    """Sets sorted and tuples as lists: the same inputs always hash the same."""
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def _run_inputs(inputs: _Inputs, mentees: list[Participant], mentors: list[Participant]) -> RunInputs:
    c = inputs.constraints
    people = {
        "settings": inputs.settings_digest,
        "objective": inputs.policy.objective.value,
        "mentees": sorted((asdict(m) for m in mentees), key=lambda p: p["id"]),
        "mentors": sorted((asdict(m) for m in mentors), key=lambda p: p["id"]),
        "constraints": [sorted(c.pinned), c.excluded, c.earlier_partners, c.declined],
    }
    mentee_rows, mentor_rows = by_id(inputs.mentees), by_id(inputs.mentors)
    return RunInputs(
        mentee_ids=sorted(m.id for m in mentees),
        mentor_ids=sorted(m.id for m in mentors),
        mentor_capacity={m.id: m.capacity for m in sorted(mentors, key=lambda m: m.id)},
        pinned=[pair_ref(mentee_rows[a], mentor_rows[b]) for a, b in sorted(c.pinned)],
        excluded=inputs.excluded,
        weights={k.value: v for k, v in sorted(inputs.policy.weights.items())},
        language_required=inputs.policy.language_hard,
        policy_digest=_digest(people),
    )


def _unmatched(result: MatchingResult, mentors: list[Participant]) -> list[RunUnmatched]:
    out = [
        RunUnmatched(
            participant_id=u.mentee_id,
            role="mentee",
            code=_UNMATCHED_CODES[u.reason],
            detail=", ".join(f"{k}: {v}" for k, v in sorted(u.detail.items())),
        )
        for u in result.unmatched
    ]
    matched = {p.mentor_id for p in result.pairs}
    for mentor in sorted(mentors, key=lambda m: m.id):
        if mentor.capacity <= 0:
            out.append(RunUnmatched(participant_id=mentor.id, role="mentor", code=UnmatchedCode.NO_CAPACITY,
                                    detail="every seat is held by a proposed or formed pair"))
        elif mentor.id not in matched:
            out.append(RunUnmatched(participant_id=mentor.id, role="mentor", code=UnmatchedCode.NOT_SELECTED,
                                    detail="the optimum gave this mentor's seats to no mentee"))
    return out


def _proposals(
    inputs: _Inputs,
    completed: MatchingRunCompleted,
    mentees: dict[str, Participant],
    mentors: dict[str, Participant],
    principal: Principal,
) -> list[Pair]:
    mentee_rows, mentor_rows = by_id(inputs.mentees), by_id(inputs.mentors)
    proposals = []
    for run_pair in completed.pairs:
        a, b = str(run_pair.mentee_id), str(run_pair.mentor_id)
        breakdown = explain(mentees[a], mentors[b], inputs.policy, inputs.constraints, check_capacity=False)
        proposals.append(
            Pair.propose(
                pair_id=run_pair.pair_id,
                organisation=principal.organisation,
                programme_id=inputs.programme_id,
                people=pair_ref(mentee_rows[a], mentor_rows[b]),
                origin=ProposalOrigin.RUN,
                score=run_pair.score,
                breakdown=criterion_points(breakdown),
                actor=actor_of(principal),
                run_id=completed.run_id,
            )
        )
    return proposals
