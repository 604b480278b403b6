"""Raw values in [0, 1] of each criterion, and the hard constraints' tests.

Each function is the single definition of its criterion, used by
``explain`` (on scalars) and by ``ScoreModel`` (on numpy arrays, or to fill
lookup tables), so both agree to rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..profiles import LearnerProfile, MatchingPolicy, Participant

INFEASIBLE = float("-inf")

def tz_distance(a: Any, b: Any) -> Any:
    """Hours between two UTC offsets on the 24 h circle."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % 24.0
    return np.minimum(d, 24.0 - d)


def raw_time_zone(tz_mentee: Any, tz_mentor: Any, policy: MatchingPolicy) -> Any:
    return np.maximum(0.0, 1.0 - tz_distance(tz_mentee, tz_mentor) / policy.max_tz_distance_hours)


def tz_too_far(tz_mentee: Any, tz_mentor: Any, policy: MatchingPolicy) -> Any:
    return policy.tz_hard & (tz_distance(tz_mentee, tz_mentor) > policy.max_tz_distance_hours)


def mentor_time_per_mentee(mentor: Participant) -> float:
    """The mentor's monthly sessions shared among all its seats, held or free.

    Not among its free seats only: a mentor holding one of two seats does not
    have twice the time for the next mentee, and a run and the suggestions
    must see the same mentor alike (a run sees only the free seats as
    ``capacity``)."""
    return float(mentor.sessions_per_month) / max(mentor.all_seats, 1)


def raw_availability(wanted: Any, offered_per_mentee: Any) -> Any:
    """1 when the mentor's time per mentee covers the mentee's wished rhythm."""
    wanted = np.asarray(wanted, dtype=np.float64)
    offered = np.asarray(offered_per_mentee, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(wanted > 0, offered / np.where(wanted > 0, wanted, 1.0), 1.0)
    return np.minimum(1.0, ratio)


def raw_learner(mentee_lp: LearnerProfile, mentor_lp: LearnerProfile, policy: MatchingPolicy) -> float:
    return float(policy.learner_compat.get((mentee_lp, mentor_lp), 0.0))


def raw_function(mentee_key: tuple[str, str], mentor_key: tuple[str, str], policy: MatchingPolicy) -> float:
    (f_e, fam_e), (f_m, fam_m) = mentee_key, mentor_key
    if f_e == f_m:
        return 1.0
    if fam_e and fam_e == fam_m:
        return float(policy.function_family_credit)
    return 0.0


def raw_cross_entity(mentee_entity: str, mentor_entity: str) -> float:
    return 1.0 if mentee_entity != mentor_entity else 0.0


def raw_generation(mentee_gen: str | None, mentor_gen: str | None, policy: MatchingPolicy) -> float:
    order = policy.generation_order
    if mentee_gen not in order or mentor_gen not in order:
        return 0.0
    gap = order.index(mentor_gen) - order.index(mentee_gen)  # > 0: mentor is younger
    return float(min(1.0, max(0.0, gap / policy.generation_full_gap)))


def seniority_violated(mentee_level: Any, mentor_level: Any, min_gap: int | None) -> Any:
    """The reverse-programme rule: mentee level - mentor level must be >= min_gap."""
    if min_gap is None:
        return False
    return np.asarray(mentee_level) - np.asarray(mentor_level) < min_gap


def theme_credit(mentee_level: int, mentor_level: int, policy: MatchingPolicy) -> float:
    """Credit of one wanted theme; mentor_level 0 = not offered."""
    if mentor_level <= 0:
        return 0.0
    if mentor_level > mentee_level:
        return policy.theme_credit_above
    if mentor_level == mentee_level:
        return policy.theme_credit_equal
    return policy.theme_credit_below


def intention_compat(mentee_intention: str, mentor_intention: str, policy: MatchingPolicy) -> float:
    value = policy.intention_compat.get((mentee_intention, mentor_intention))
    if value is not None:
        return value
    return policy.same_intention_credit if mentee_intention == mentor_intention else 0.0


def best_intention(mentee_intention: str, mentor_intentions: Iterable[str], policy: MatchingPolicy) -> tuple[float, str | None]:
    best, best_label = 0.0, None
    for label in sorted(mentor_intentions):
        v = intention_compat(mentee_intention, label, policy)
        if v > best:
            best, best_label = v, label
    return best, best_label


def same_reporting_line(mentee: Participant, mentor: Participant, policy: MatchingPolicy) -> bool:
    if mentor.employee_ref and mentor.employee_ref in mentee.line_managers:
        return True
    if mentee.employee_ref and mentee.employee_ref in mentor.line_managers:
        return True
    return bool(policy.exclude_same_manager and mentee.manager_ref and mentee.manager_ref == mentor.manager_ref)


def same_person(mentee: Participant, mentor: Participant) -> bool:
    return mentee.id == mentor.id or bool(mentee.employee_ref and mentee.employee_ref == mentor.employee_ref)

