"""What matching needs to know: participants, the programme's policy, pair constraints.

Plain frozen dataclasses with no I/O. The matching service builds them from its
own copy of enrollment events (the candidate pool) and hands them to
:mod:`.scoring` and :mod:`.solver`.

Conventions
-----------
* ``job_level``: a larger number is more senior (1 = entry level).
* ``generation``: a band name from :attr:`MatchingPolicy.generation_order`
  (oldest first; the enrollment events' ``GenerationBand`` values); unknown or
  missing bands score 0 on the generation criterion.
* ``function_family``: optional grouping of business functions; empty means
  only the same function counts on the function criterion.
* ``themes``: theme -> self-rated level 1..5. For a mentee the themes it wants
  (its level is where it stands today); for a mentor the themes it offers.
* ``sessions_per_month``: for a mentee the rhythm it wants; for a mentor the
  sessions it can give per month in total (shared among its mentees).
* ``capacity``: a mentor's *remaining* number of mentees (0..3 in practice; 0
  makes every pair with it infeasible). Ignored for mentees.
* ``manager_ref`` / ``employee_ref`` / ``manager_chain``: HR employee
  references used for the "same reporting line" constraint. ``manager_chain``
  is the optional full upward chain (nearest manager first); ``manager_ref``
  is always treated as part of the chain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "Criterion",
    "DEFAULT_INTENTION_COMPAT",
    "DEFAULT_LEARNER_COMPAT",
    "DEFAULT_WEIGHTS",
    "GENERATIONS",
    "HardConstraint",
    "LearnerProfile",
    "MatchingPolicy",
    "Objective",
    "PairConstraints",
    "Participant",
    "Role",
]

MIN_LEVEL, MAX_LEVEL = 1, 5  # theme self-rating scale


class Role(StrEnum):
    MENTEE = "mentee"
    MENTOR = "mentor"


class LearnerProfile(StrEnum):
    EXPERIENTIAL = "experiential"  # learns by experimenting
    THEORETICAL = "theoretical"  # learns from concepts first
    MIXED = "mixed"


class Objective(StrEnum):
    MAX_TOTAL_SCORE = "max_total_score"
    MAX_MATCHED_THEN_SCORE = "max_matched_then_score"  # lexicographic


class Criterion(StrEnum):
    """The weighted criteria; each yields a raw value in [0, 1] per pair."""

    THEMES = "themes"  # wanted (mentee) vs offered (mentor), with levels
    LEARNER_PROFILE = "learner_profile"  # compatibility table
    INTENTIONS = "intentions"  # compatibility table of intentions
    FUNCTION = "function"  # same business function, or same family
    LANGUAGE = "language"  # at least one shared language
    TIME_ZONE = "time_zone"  # 1 at the same offset, 0 at max distance
    CROSS_ENTITY = "cross_entity"  # different subsidiary (breaks silos)
    AVAILABILITY = "availability"  # mentor's time per mentee vs mentee's wish
    GENERATION = "generation"  # mentor from a younger generation band


class HardConstraint(StrEnum):
    """Why a pair is infeasible. Codes are stable: events and the API carry them."""

    SAME_PERSON = "same_person"
    NO_SHARED_LANGUAGE = "no_shared_language"
    SAME_REPORTING_LINE = "same_reporting_line"
    EARLIER_PARTNER = "earlier_partner"
    HR_EXCLUDED = "hr_excluded"
    DECLINED = "declined"
    SENIORITY = "seniority"
    NO_CAPACITY = "no_capacity"
    TIME_ZONE_TOO_FAR = "time_zone_too_far"


DEFAULT_WEIGHTS: Mapping[Criterion, float] = MappingProxyType(
    {
        Criterion.THEMES: 30.0,
        Criterion.INTENTIONS: 15.0,
        Criterion.LEARNER_PROFILE: 10.0,
        Criterion.FUNCTION: 10.0,
        Criterion.TIME_ZONE: 10.0,
        Criterion.AVAILABILITY: 10.0,
        Criterion.LANGUAGE: 5.0,
        Criterion.CROSS_ENTITY: 5.0,
        Criterion.GENERATION: 5.0,
    }
)

_LP = LearnerProfile
# (mentee profile, mentor profile) -> compatibility. A mentee who learns by
# experimenting gets most from a mentor who teaches by doing, and so on.
DEFAULT_LEARNER_COMPAT: Mapping[tuple[LearnerProfile, LearnerProfile], float] = MappingProxyType(
    {
        (_LP.EXPERIENTIAL, _LP.EXPERIENTIAL): 1.0,
        (_LP.EXPERIENTIAL, _LP.MIXED): 0.75,
        (_LP.EXPERIENTIAL, _LP.THEORETICAL): 0.25,
        (_LP.THEORETICAL, _LP.THEORETICAL): 1.0,
        (_LP.THEORETICAL, _LP.MIXED): 0.75,
        (_LP.THEORETICAL, _LP.EXPERIENTIAL): 0.25,
        (_LP.MIXED, _LP.MIXED): 1.0,
        (_LP.MIXED, _LP.EXPERIENTIAL): 0.75,
        (_LP.MIXED, _LP.THEORETICAL): 0.75,
    }
)

# (mentee intention, mentor intention) -> compatibility. Pairs not listed score
# 0, except identical labels, which score ``MatchingPolicy.same_intention_credit``.
DEFAULT_INTENTION_COMPAT: Mapping[tuple[str, str], float] = MappingProxyType(
    {
        ("support_junior_career", "progress_in_own_field"): 1.0,
        ("support_junior_career", "gain_visibility"): 0.8,
        ("support_junior_career", "build_network"): 0.6,
        ("support_junior_career", "understand_company_businesses"): 0.5,
        ("find_digital_profiles", "gain_visibility"): 1.0,
        ("find_digital_profiles", "build_network"): 0.8,
        ("find_digital_profiles", "progress_in_own_field"): 0.6,
        ("find_digital_profiles", "understand_company_businesses"): 0.4,
        ("understand_digital_culture", "understand_company_businesses"): 1.0,
        ("understand_digital_culture", "build_network"): 0.6,
        ("understand_digital_culture", "progress_in_own_field"): 0.5,
        ("build_digital_skills", "progress_in_own_field"): 0.9,
        ("build_digital_skills", "understand_company_businesses"): 0.7,
        ("build_digital_skills", "gain_visibility"): 0.5,
        ("transform_my_team", "understand_company_businesses"): 1.0,
        ("transform_my_team", "gain_visibility"): 0.7,
        ("transform_my_team", "build_network"): 0.5,
    }
)

GENERATIONS: tuple[str, ...] = (
    "silent",
    "baby_boomer",
    "gen_x",
    "gen_y",
    "gen_z",
    "gen_alpha",
)


def _frozen_map(m: Mapping) -> Mapping:
    return MappingProxyType(dict(m))


@dataclass(frozen=True, slots=True)
class Participant:
    """A matchable participant. Validated on construction (ValueError)."""

    id: str
    role: Role
    country: str
    entity: str
    function: str
    job_level: int
    tenure_years: float
    languages: frozenset[str]
    tz_offset_hours: float
    learner_profile: LearnerProfile
    function_family: str = ""
    generation: str | None = None
    intentions: frozenset[str] = frozenset()
    # theme -> self-rated level 1..5, stored as a sorted tuple of pairs (hashable).
    themes: tuple[tuple[str, int], ...] = ()
    sessions_per_month: float = 1.0
    capacity: int = 1  # seats the solver may still fill (a mentor's free seats in a run)
    # Every seat of a mentor, held or free: its monthly sessions are shared
    # among that many mentees (availability). None: ``capacity``.
    seats: int | None = None
    manager_ref: str | None = None
    employee_ref: str | None = None
    manager_chain: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not self.id:
            raise ValueError("id must not be empty")
        set_(self, "role", Role(self.role))
        set_(self, "learner_profile", LearnerProfile(self.learner_profile))
        set_(self, "languages", frozenset(self.languages))
        set_(self, "intentions", frozenset(self.intentions))
        set_(self, "manager_chain", tuple(self.manager_chain))
        themes = self.themes.items() if isinstance(self.themes, Mapping) else self.themes
        norm: dict[str, int] = {}
        for theme, level in themes:
            level = int(level)
            if not MIN_LEVEL <= level <= MAX_LEVEL:
                raise ValueError(f"theme {theme!r}: level {level} not in {MIN_LEVEL}..{MAX_LEVEL}")
            if theme in norm:
                raise ValueError(f"theme {theme!r} given twice")
            norm[theme] = level
        set_(self, "themes", tuple(sorted(norm.items())))
        if not math.isfinite(self.tz_offset_hours) or not -14.0 <= self.tz_offset_hours <= 14.0:
            raise ValueError("tz_offset_hours must be within -14..14")
        if self.sessions_per_month < 0 or not math.isfinite(self.sessions_per_month):
            raise ValueError("sessions_per_month must be >= 0")
        if self.capacity < 0:
            raise ValueError("capacity must be >= 0")
        if self.seats is not None and self.seats < self.capacity:
            raise ValueError("seats must be >= capacity (the free seats are among them)")
        if self.tenure_years < 0:
            raise ValueError("tenure_years must be >= 0")

    @property
    def all_seats(self) -> int:
        return self.capacity if self.seats is None else self.seats

    @property
    def theme_levels(self) -> dict[str, int]:
        return dict(self.themes)

    @property
    def line_managers(self) -> frozenset[str]:
        """Every employee ref above this person (direct manager and chain)."""
        refs = set(self.manager_chain)
        if self.manager_ref:
            refs.add(self.manager_ref)
        return frozenset(refs)


@dataclass(frozen=True)
class MatchingPolicy:
    """What a programme decides about matching. Defaults suit a reverse programme."""

    weights: Mapping[Criterion, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    language_hard: bool = True
    max_tz_distance_hours: float = 8.0  # time-zone raw value reaches 0 here
    tz_hard: bool = False  # if True, a distance above the max is infeasible
    # seniority rule of reverse programmes, as in enrollment's SeniorityRule: a pair
    # needs mentee.job_level - mentor.job_level >= seniority_min_gap (0: the mentor is
    # not more senior; 1: strictly junior). None: not enforced (mutual programmes).
    seniority_min_gap: int | None = 0
    exclude_same_manager: bool = False  # also exclude pairs with the same direct manager
    objective: Objective = Objective.MAX_TOTAL_SCORE
    top_k: int = 5  # suggestions offered to a mentee in the choice flow
    # theme credit of a wanted theme by mentor level vs mentee level
    theme_credit_above: float = 1.0
    theme_credit_equal: float = 0.6
    theme_credit_below: float = 0.3
    function_family_credit: float = 0.5
    learner_compat: Mapping[tuple[LearnerProfile, LearnerProfile], float] = field(
        default_factory=lambda: dict(DEFAULT_LEARNER_COMPAT)
    )
    intention_compat: Mapping[tuple[str, str], float] = field(
        default_factory=lambda: dict(DEFAULT_INTENTION_COMPAT)
    )
    same_intention_credit: float = 1.0
    generation_order: tuple[str, ...] = GENERATIONS
    generation_full_gap: int = 2  # bands between mentor and mentee for a raw value of 1
    # large runs: candidates kept per mentee before the exact solve (see solver)
    candidate_k: int = 50

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        weights = {Criterion(k): float(v) for k, v in self.weights.items()}
        for c in Criterion:
            weights.setdefault(c, 0.0)
        if any(v < 0 or not math.isfinite(v) for v in weights.values()):
            raise ValueError("weights must be finite and >= 0")
        if sum(weights.values()) <= 0:
            raise ValueError("at least one weight must be > 0")
        set_(self, "weights", _frozen_map(weights))
        set_(self, "objective", Objective(self.objective))
        learner = {(LearnerProfile(a), LearnerProfile(b)): float(v) for (a, b), v in self.learner_compat.items()}
        set_(self, "learner_compat", _frozen_map(learner))
        set_(self, "intention_compat", _frozen_map({(str(a), str(b)): float(v) for (a, b), v in self.intention_compat.items()}))
        set_(self, "generation_order", tuple(self.generation_order))
        for name in ("theme_credit_above", "theme_credit_equal", "theme_credit_below", "function_family_credit", "same_intention_credit"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        for table in (learner, self.intention_compat):
            if any(not 0.0 <= v <= 1.0 for v in table.values()):
                raise ValueError("compatibility values must be within [0, 1]")
        if self.max_tz_distance_hours <= 0:
            raise ValueError("max_tz_distance_hours must be > 0")
        if self.generation_full_gap < 1:
            raise ValueError("generation_full_gap must be >= 1")
        if self.top_k < 1 or self.candidate_k < 1:
            raise ValueError("top_k and candidate_k must be >= 1")

    def __hash__(self) -> int:  # mappings are not hashable: hash a canonical form
        def canon(v: object) -> object:
            return tuple(sorted((str(k), canon(x)) for k, x in v.items())) if isinstance(v, Mapping) else v

        return hash(tuple(canon(getattr(self, f.name)) for f in fields(self)))

    @property
    def total_weight(self) -> float:
        return float(sum(self.weights.values()))

    def share(self, criterion: Criterion) -> float:
        """The criterion's share of the 100 points."""
        return self.weights[criterion] / self.total_weight


def _pairs(items: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    out = set()
    for a, b in items:
        out.add((str(a), str(b)))
    return frozenset(out)


@dataclass(frozen=True)
class PairConstraints:
    """Pair-level decisions made outside the scores. All pairs are (mentee_id, mentor_id).

    * ``pinned``: HR fixed these pairs before the run; the solver keeps them.
    * ``excluded``: HR excluded these pairs.
    * ``earlier_partners``: people paired before (in either direction); never again.
    * ``declined``: one side declined this pair in the choice flow.
    """

    pinned: tuple[tuple[str, str], ...] = ()
    excluded: frozenset[tuple[str, str]] = frozenset()
    earlier_partners: frozenset[tuple[str, str]] = frozenset()
    declined: frozenset[tuple[str, str]] = frozenset()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "pinned", tuple((str(a), str(b)) for a, b in self.pinned))
        set_(self, "excluded", _pairs(self.excluded))
        set_(self, "earlier_partners", _pairs(self.earlier_partners))
        set_(self, "declined", _pairs(self.declined))

    def pair_violations(self, mentee_id: str, mentor_id: str) -> list[HardConstraint]:
        out = []
        if (mentee_id, mentor_id) in self.earlier_partners or (mentor_id, mentee_id) in self.earlier_partners:
            out.append(HardConstraint.EARLIER_PARTNER)
        if (mentee_id, mentor_id) in self.excluded:
            out.append(HardConstraint.HR_EXCLUDED)
        if (mentee_id, mentor_id) in self.declined:
            out.append(HardConstraint.DECLINED)
        return out
