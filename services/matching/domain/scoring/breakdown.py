"""One pair scored in plain Python and explained: what HR and participants see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..profiles import Criterion, HardConstraint, MatchingPolicy, PairConstraints, Participant
from .criteria import (
    INFEASIBLE,
    best_intention,
    mentor_time_per_mentee,
    raw_availability,
    raw_cross_entity,
    raw_function,
    raw_generation,
    raw_learner,
    raw_time_zone,
    same_person,
    same_reporting_line,
    seniority_violated,
    theme_credit,
    tz_distance,
    tz_too_far,
)

@dataclass(frozen=True, slots=True)
class CriterionScore:
    criterion: Criterion
    raw: float  # in [0, 1]
    weight: float  # as the programme set it
    share: float  # weight / sum of weights
    contribution: float  # points out of 100 = 100 * share * raw
    detail: str


@dataclass(frozen=True, slots=True)
class Breakdown:
    mentee_id: str
    mentor_id: str
    criteria: tuple[CriterionScore, ...]
    violations: tuple[HardConstraint, ...]  # empty when feasible
    reasons: tuple[str, ...]  # one human-readable sentence per violation
    soft_total: float  # sum of contributions, whatever the violations
    total: float  # soft_total if feasible, else -inf

    @property
    def feasible(self) -> bool:
        return not self.violations

    def criterion(self, criterion: Criterion) -> CriterionScore:
        return next(c for c in self.criteria if c.criterion == criterion)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mentee_id": self.mentee_id,
            "mentor_id": self.mentor_id,
            "feasible": self.feasible,
            "total": self.total if self.feasible else None,
            "soft_total": self.soft_total,
            "criteria": [
                {
                    "criterion": c.criterion.value,
                    "raw": c.raw,
                    "weight": c.weight,
                    "share": c.share,
                    "contribution": c.contribution,
                    "detail": c.detail,
                }
                for c in self.criteria
            ],
            "violations": [v.value for v in self.violations],
            "reasons": list(self.reasons),
        }


def hard_violations(
    mentee: Participant,
    mentor: Participant,
    policy: MatchingPolicy,
    constraints: PairConstraints | None = None,
    *,
    check_capacity: bool = True,
) -> list[tuple[HardConstraint, str]]:
    """Every hard constraint the pair breaks, with a sentence for humans."""
    out: list[tuple[HardConstraint, str]] = []
    if same_person(mentee, mentor):
        out.append((HardConstraint.SAME_PERSON, "mentee and mentor are the same person"))
    if policy.language_hard and not (mentee.languages & mentor.languages):
        out.append((HardConstraint.NO_SHARED_LANGUAGE, "no shared language (required by the programme)"))
    if same_reporting_line(mentee, mentor, policy):
        out.append((HardConstraint.SAME_REPORTING_LINE, "same reporting line"))
    if constraints is not None:
        for code in constraints.pair_violations(mentee.id, mentor.id):
            text = {
                HardConstraint.EARLIER_PARTNER: "paired together before",
                HardConstraint.HR_EXCLUDED: "excluded by HR",
                HardConstraint.DECLINED: "declined earlier in the choice flow",
            }[code]
            out.append((code, text))
    if bool(seniority_violated(mentee.job_level, mentor.job_level, policy.seniority_min_gap)):
        out.append(
            (
                HardConstraint.SENIORITY,
                f"mentor level {mentor.job_level} vs mentee level {mentee.job_level}: the programme needs a gap "
                f"of at least {policy.seniority_min_gap}",
            )
        )
    if bool(tz_too_far(mentee.tz_offset_hours, mentor.tz_offset_hours, policy)):
        d = float(tz_distance(mentee.tz_offset_hours, mentor.tz_offset_hours))
        out.append((HardConstraint.TIME_ZONE_TOO_FAR, f"{d:g} h apart, above the {policy.max_tz_distance_hours:g} h limit"))
    if check_capacity and mentor.capacity <= 0:
        out.append((HardConstraint.NO_CAPACITY, "mentor has no capacity left"))
    return out


def explain(
    mentee: Participant,
    mentor: Participant,
    policy: MatchingPolicy,
    constraints: PairConstraints | None = None,
    *,
    check_capacity: bool = True,
) -> Breakdown:
    """Score one pair and say why. Equal to :class:`ScoreModel`'s score (to 1e-9)."""
    items: list[tuple[Criterion, float, str]] = []

    # themes: each wanted theme gets a credit by the mentor's level vs the mentee's
    offered = mentor.theme_levels
    credits, above, met = 0.0, 0, 0
    for theme, level in mentee.themes:
        lm = offered.get(theme, 0)
        credits += theme_credit(level, lm, policy)
        met += lm > 0
        above += lm > level
    n_wanted = len(mentee.themes)
    raw = credits / n_wanted if n_wanted else 0.0
    items.append(
        (
            Criterion.THEMES,
            raw,
            f"{met}/{n_wanted} wanted themes offered, {above} by a mentor rated above the mentee"
            if n_wanted
            else "the mentee wants no theme",
        )
    )

    lp = raw_learner(mentee.learner_profile, mentor.learner_profile, policy)
    items.append((Criterion.LEARNER_PROFILE, lp, f"{mentee.learner_profile.value} mentee, {mentor.learner_profile.value} mentor"))

    if mentee.intentions:
        total, parts = 0.0, []
        for intention in sorted(mentee.intentions):
            v, label = best_intention(intention, mentor.intentions, policy)
            total += v
            if label is not None:
                parts.append(f"{intention}->{label} ({v:g})")
        raw = total / len(mentee.intentions)
        items.append((Criterion.INTENTIONS, raw, ", ".join(parts) or "no compatible intention"))
    else:
        items.append((Criterion.INTENTIONS, 0.0, "the mentee stated no intention"))

    fn = raw_function((mentee.function, mentee.function_family), (mentor.function, mentor.function_family), policy)
    items.append(
        (
            Criterion.FUNCTION,
            fn,
            "same function"
            if fn == 1.0
            else ("same function family" if fn > 0 else "different functions"),
        )
    )

    shared = sorted(mentee.languages & mentor.languages)
    items.append((Criterion.LANGUAGE, 1.0 if shared else 0.0, f"shared: {', '.join(shared)}" if shared else "no shared language"))

    tz = float(raw_time_zone(mentee.tz_offset_hours, mentor.tz_offset_hours, policy))
    d = float(tz_distance(mentee.tz_offset_hours, mentor.tz_offset_hours))
    items.append((Criterion.TIME_ZONE, tz, f"{d:g} h apart"))

    ce = raw_cross_entity(mentee.entity, mentor.entity)
    items.append((Criterion.CROSS_ENTITY, ce, "different entities" if ce else "same entity"))

    per = mentor_time_per_mentee(mentor)
    av = float(raw_availability(mentee.sessions_per_month, per))
    items.append((Criterion.AVAILABILITY, av, f"mentor {per:g} sessions/month per mentee, mentee wants {mentee.sessions_per_month:g}"))

    gen = raw_generation(mentee.generation, mentor.generation, policy)
    items.append((Criterion.GENERATION, gen, f"mentee {mentee.generation}, mentor {mentor.generation}"))

    criteria = []
    for criterion, raw, detail in items:
        share = policy.share(criterion)
        criteria.append(
            CriterionScore(
                criterion=criterion,
                raw=float(raw),
                weight=policy.weights[criterion],
                share=share,
                contribution=100.0 * share * float(raw),
                detail=detail,
            )
        )
    soft_total = float(sum(c.contribution for c in criteria))
    violations = hard_violations(mentee, mentor, policy, constraints, check_capacity=check_capacity)
    return Breakdown(
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        criteria=tuple(criteria),
        violations=tuple(v for v, _ in violations),
        reasons=tuple(r for _, r in violations),
        soft_total=soft_total,
        total=soft_total if not violations else INFEASIBLE,
    )

