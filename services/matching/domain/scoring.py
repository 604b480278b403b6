"""Pair scores in [0, 100], explained per criterion, and their vectorised twin.

Score of a feasible pair = ``100 * sum(share_c * raw_c)`` where ``raw_c`` is in
[0, 1] and ``share_c = weight_c / sum(weights)``. An infeasible pair (a hard
constraint holds) scores ``-inf``.

Two implementations of the same definition:

* :func:`explain` scores one pair in plain Python and says why (per criterion
  raw value, weight, contribution; the hard constraints that make it
  infeasible). This is what HR and participants see.
* :class:`ScoreModel` encodes both sides once into arrays and scores whole
  blocks of mentee x mentor pairs. Every criterion is written as a product of a
  mentee-side row and a mentor-side column (one-hot codes of categorical keys on
  one side, the criterion's table on the other; theme and intention bags
  likewise), so that the sum of all criteria is a single matrix product
  ``F @ G`` done by BLAS. Hard constraints that depend on categorical keys
  (seniority, time zone when hard) add a large negative penalty in the same
  product; shared languages are counted by a second, small product; pair-level
  exclusions (reporting line, earlier partner, HR, declined, same person) are a
  sparse list. Feasible scores are >= 0 and penalised ones are below -900,
  so top-K selection needs no masking pass. Both implementations call the same raw-value functions, so they
  agree to floating-point rounding (tests check |diff| < 1e-9).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .profiles import (
    MAX_LEVEL,
    Criterion,
    HardConstraint,
    LearnerProfile,
    MatchingPolicy,
    PairConstraints,
    Participant,
)

__all__ = [
    "Breakdown",
    "CandidateGraph",
    "CriterionScore",
    "ScoreModel",
    "explain",
    "hard_violations",
    "score_matrix",
]

INFEASIBLE = float("-inf")
# Hard constraints inside F @ G subtract this penalty. A power of two above any
# score, so that adding it back (shared language) is exact to ~1e-13, and any
# penalised pair lands below _CUT while every feasible score is >= 0.
_PENALTY = 1024.0
_CUT = -0.5
_SMALL_PRODUCT = 1_000_000  # rows * features * mentors below which einsum replaces BLAS
_TABLE_MAX_CELLS = 250_000  # above this, a categorical criterion is computed elementwise


# --------------------------------------------------------------------------- raw values
# Each function is the single definition of its criterion, used by explain()
# (on scalars) and by ScoreModel (on numpy arrays, or to fill lookup tables).


def tz_distance(a: Any, b: Any) -> Any:
    """Hours between two UTC offsets on the 24 h circle."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % 24.0
    return np.minimum(d, 24.0 - d)


def raw_time_zone(tz_mentee: Any, tz_mentor: Any, policy: MatchingPolicy) -> Any:
    return np.maximum(0.0, 1.0 - tz_distance(tz_mentee, tz_mentor) / policy.max_tz_distance_hours)


def tz_too_far(tz_mentee: Any, tz_mentor: Any, policy: MatchingPolicy) -> Any:
    return policy.tz_hard & (tz_distance(tz_mentee, tz_mentor) > policy.max_tz_distance_hours)


def mentor_time_per_mentee(mentor: Participant) -> float:
    return float(mentor.sessions_per_month) / max(mentor.capacity, 1)


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


def _best_intention(mentee_intention: str, mentor_intentions: Iterable[str], policy: MatchingPolicy) -> tuple[float, str | None]:
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


# --------------------------------------------------------------------------- explain


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
            v, label = _best_intention(intention, mentor.intentions, policy)
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


# --------------------------------------------------------------------------- vectorised


def _codes(keys: Sequence[Hashable]) -> tuple[np.ndarray, list[Hashable]]:
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
    return codes, list(index)


@dataclass
class _Categorical:
    """A criterion (or penalty) that depends on one key per side."""

    name: str
    coef: float  # 100 * share (0 for a pure penalty)
    mentee_keys: Sequence[Hashable]
    mentor_keys: Sequence[Hashable]
    raw: Callable[[Any, Any], float] | None  # scalar raw value, used for tables
    raw_vec: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None  # elementwise fallback
    penalty: Callable[[Any, Any], bool] | None = None
    penalty_vec: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class CandidateGraph:
    """Each mentee's best feasible mentors (CSR by mentee row), for large runs.

    ``next_best[i]`` is the best feasible score of row i *not* in the graph
    (``-inf`` when the row kept all its feasible mentors); ``row_best[i]`` is
    row i's best feasible score (``-inf``: no feasible mentor at all, capacity
    aside).
    """

    n_rows: int
    n_cols: int
    indptr: np.ndarray
    cols: np.ndarray
    scores: np.ndarray
    next_best: np.ndarray
    row_best: np.ndarray

    @property
    def n_edges(self) -> int:
        return int(self.cols.size)

    def row_slice(self, i: int) -> slice:
        return slice(int(self.indptr[i]), int(self.indptr[i + 1]))

    def with_edges(self, rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, next_best: np.ndarray | None = None) -> CandidateGraph:
        """A graph with extra edges (duplicates of existing edges are dropped)."""
        old_rows = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))
        r = np.concatenate([old_rows, rows])
        c = np.concatenate([self.cols, cols])
        s = np.concatenate([self.scores, scores])
        key = r.astype(np.int64) * self.n_cols + c
        _, first = np.unique(key, return_index=True)  # sorted by (row, col); keeps old edges first
        r, c, s = r[first], c[first], s[first]
        indptr = np.zeros(self.n_rows + 1, dtype=np.int64)
        np.add.at(indptr, r + 1, 1)
        np.cumsum(indptr, out=indptr)
        return CandidateGraph(
            n_rows=self.n_rows,
            n_cols=self.n_cols,
            indptr=indptr,
            cols=c.astype(np.int32),
            scores=s,
            next_best=self.next_best if next_best is None else next_best,
            row_best=self.row_best,
        )


class ScoreModel:
    """Both sides encoded once; scores blocks of pairs as matrices.

    ``check_capacity=False`` leaves mentor capacity out of feasibility (the
    solver handles capacity with slots and needs to tell "no compatible mentor"
    from "capacity exhausted").
    """

    def __init__(
        self,
        mentees: Sequence[Participant],
        mentors: Sequence[Participant],
        policy: MatchingPolicy,
        constraints: PairConstraints | None = None,
        *,
        check_capacity: bool = True,
    ) -> None:
        self.mentees = tuple(mentees)
        self.mentors = tuple(mentors)
        self.policy = policy
        self.constraints = constraints or PairConstraints()
        self.check_capacity = check_capacity
        self.n_mentees, self.n_mentors = len(self.mentees), len(self.mentors)
        self.mentee_index = {p.id: i for i, p in enumerate(self.mentees)}
        self.mentor_index = {p.id: j for j, p in enumerate(self.mentors)}
        if len(self.mentee_index) != self.n_mentees or len(self.mentor_index) != self.n_mentors:
            raise ValueError("participant ids must be unique on each side")
        self._encode()

    # ----------------------------------------------------------------- encoding
    def _encode(self) -> None:
        p, E, M = self.policy, self.mentees, self.mentors
        ne, nm = self.n_mentees, self.n_mentors
        coef = {c: 100.0 * p.share(c) for c in p.weights}
        f_blocks: list[np.ndarray] = []
        g_blocks: list[np.ndarray] = []
        self._elementwise: list[tuple[float, np.ndarray, np.ndarray, _Categorical]] = []

        # constant term: the language criterion when it is a hard requirement
        # (every feasible pair shares a language, so its raw value is 1)
        # ... minus the penalty, added back in each block when a language is shared
        if p.language_hard:
            f_blocks.append(np.ones((ne, 1)))
            g_blocks.append(np.full((1, nm), -_PENALTY))
            if coef[Criterion.LANGUAGE] > 0:
                f_blocks.append(np.ones((ne, 1)))
                g_blocks.append(np.full((1, nm), coef[Criterion.LANGUAGE]))

        # themes (bag): F[e, (t, le)] = 1/|wanted e|; G[(t, le), m] = coef * credit(le, level_m(t))
        if coef[Criterion.THEMES] > 0:
            columns: dict[tuple[str, int], int] = {}
            rows_e, cols_e, vals_e = [], [], []
            for i, e in enumerate(E):
                if e.themes:
                    inv = 1.0 / len(e.themes)
                    for theme, level in e.themes:
                        rows_e.append(i)
                        cols_e.append(columns.setdefault((theme, level), len(columns)))
                        vals_e.append(inv)
            if columns:
                Fth = np.zeros((ne, len(columns)))
                Fth[rows_e, cols_e] = vals_e
                theme_ids = {t: k for k, t in enumerate(sorted({t for t, _ in columns}))}
                mentor_levels = np.zeros((nm, len(theme_ids)), dtype=np.int64)
                for j, m in enumerate(M):
                    for theme, level in m.themes:
                        k = theme_ids.get(theme)
                        if k is not None:
                            mentor_levels[j, k] = level
                credit = np.array(
                    [[theme_credit(le, lm, p) for lm in range(MAX_LEVEL + 1)] for le in range(MAX_LEVEL + 1)]
                )  # credit[le, lm]
                col_theme = np.array([theme_ids[t] for t, _ in columns])
                col_level = np.array([le for _, le in columns])
                Gth = coef[Criterion.THEMES] * credit[col_level[:, None], mentor_levels[:, col_theme].T]
                f_blocks.append(Fth)
                g_blocks.append(Gth)

        # intentions (bag): F[e, i] = 1/|E_e|; G[i, m] = coef * max_{j in M_m} compat(i, j)
        if coef[Criterion.INTENTIONS] > 0:
            labels = sorted({i for e in E for i in e.intentions})
            if labels:
                lab = {x: k for k, x in enumerate(labels)}
                Fin = np.zeros((ne, len(labels)))
                for r, e in enumerate(E):
                    if e.intentions:
                        inv = 1.0 / len(e.intentions)
                        for x in e.intentions:
                            Fin[r, lab[x]] = inv
                set_codes, sets = _codes([m.intentions for m in M])
                per_set = np.array(
                    [[coef[Criterion.INTENTIONS] * _best_intention(x, s, p)[0] for s in sets] for x in labels]
                ).reshape(len(labels), len(sets))
                f_blocks.append(Fin)
                g_blocks.append(per_set[:, set_codes])

        cats = [
            _Categorical(
                "learner",
                coef[Criterion.LEARNER_PROFILE],
                [e.learner_profile for e in E],
                [m.learner_profile for m in M],
                lambda a, b: raw_learner(a, b, p),
            ),
            _Categorical(
                "function",
                coef[Criterion.FUNCTION],
                [(e.function, e.function_family) for e in E],
                [(m.function, m.function_family) for m in M],
                lambda a, b: raw_function(a, b, p),
            ),
            _Categorical(
                "generation",
                coef[Criterion.GENERATION],
                [e.generation for e in E],
                [m.generation for m in M],
                lambda a, b: raw_generation(a, b, p),
            ),
            _Categorical(
                "time_zone",
                coef[Criterion.TIME_ZONE],
                [float(e.tz_offset_hours) for e in E],
                [float(m.tz_offset_hours) for m in M],
                lambda a, b: float(raw_time_zone(a, b, p)),
                raw_vec=lambda a, b: raw_time_zone(a, b, p),
                penalty=(lambda a, b: bool(tz_too_far(a, b, p))) if p.tz_hard else None,
                penalty_vec=(lambda a, b: tz_too_far(a, b, p)) if p.tz_hard else None,
            ),
            _Categorical(
                "availability",
                coef[Criterion.AVAILABILITY],
                [float(e.sessions_per_month) for e in E],
                [mentor_time_per_mentee(m) for m in M],
                lambda a, b: float(raw_availability(a, b)),
                raw_vec=raw_availability,
            ),
            _Categorical(
                "seniority",
                0.0,
                [int(e.job_level) for e in E],
                [int(m.job_level) for m in M],
                None,
                penalty=(lambda a, b: bool(seniority_violated(a, b, p.seniority_min_gap))),
                penalty_vec=lambda a, b: seniority_violated(a, b, p.seniority_min_gap),
            )
            if p.seniority_min_gap is not None
            else None,
        ]
        for cat in cats:
            if cat is None or (cat.coef == 0 and cat.penalty is None):
                continue
            ce, ue = _codes(cat.mentee_keys)
            cm, um = _codes(cat.mentor_keys)
            if len(ue) * len(um) <= _TABLE_MAX_CELLS or cat.raw_vec is None:
                table = np.zeros((len(ue), len(um)))
                for a, ka in enumerate(ue):
                    for b, kb in enumerate(um):
                        v = cat.coef * cat.raw(ka, kb) if cat.coef else 0.0
                        if cat.penalty is not None and cat.penalty(ka, kb):
                            v -= _PENALTY
                        table[a, b] = v
                onehot = np.zeros((ne, len(ue)))
                onehot[np.arange(ne), ce] = 1.0
                f_blocks.append(onehot)
                g_blocks.append(table[:, cm])
            else:  # too many distinct values: elementwise in each block
                ve = np.asarray(cat.mentee_keys, dtype=np.float64)
                vm = np.asarray(cat.mentor_keys, dtype=np.float64)
                self._elementwise.append((cat.coef, ve, vm, cat))

        self._F = np.ascontiguousarray(np.hstack(f_blocks)) if f_blocks else np.zeros((ne, 1))
        self._G = np.ascontiguousarray(np.vstack(g_blocks)) if g_blocks else np.zeros((1, nm))

        # languages: shared-language count by a small product (float32, exact for counts)
        langs = sorted({x for q in (*E, *M) for x in q.languages})
        li = {x: k for k, x in enumerate(langs)}
        self._lang_e = np.zeros((ne, max(len(langs), 1)), dtype=np.float32)
        self._lang_m = np.zeros((max(len(langs), 1), nm), dtype=np.float32)
        for r, e in enumerate(E):
            for x in e.languages:
                self._lang_e[r, li[x]] = 1.0
        for c, m in enumerate(M):
            for x in m.languages:
                self._lang_m[li[x], c] = 1.0
        self._lang_coef = coef[Criterion.LANGUAGE]

        # cross-entity bonus: a constant, minus a sparse correction for same-entity pairs
        # (entities are many and mostly different, so this is cheaper than a one-hot block)
        self._entity_coef = coef[Criterion.CROSS_ENTITY] * raw_cross_entity("a", "b")
        self._entity_same = coef[Criterion.CROSS_ENTITY] * raw_cross_entity("a", "a") - self._entity_coef
        ent_codes, _ = _codes([q.entity for q in (*E, *M)])
        self._entity_e, self._entity_m = ent_codes[:ne], ent_codes[ne:]
        order = np.argsort(self._entity_m, kind="stable")
        self._entity_mentors = order  # mentor indices grouped by entity code
        n_codes = int(ent_codes.max(initial=-1)) + 1
        self._entity_ptr = np.zeros(n_codes + 1, dtype=np.int64)
        np.cumsum(np.bincount(self._entity_m, minlength=n_codes), out=self._entity_ptr[1:])
        if self._entity_coef:
            self._F = np.hstack([self._F, np.ones((ne, 1))])
            self._G = np.vstack([self._G, np.full((1, nm), self._entity_coef)])

        self._levels_e = np.array([e.job_level for e in E], dtype=np.int64)
        self._levels_m = np.array([m.job_level for m in M], dtype=np.int64)
        self._tz_e = np.array([e.tz_offset_hours for e in E], dtype=np.float64)
        self._tz_m = np.array([m.tz_offset_hours for m in M], dtype=np.float64)
        self._capacity = np.array([m.capacity for m in M], dtype=np.int64)
        self._dead_cols = np.flatnonzero(self._capacity <= 0) if self.check_capacity else np.zeros(0, dtype=np.int64)
        self._build_exclusions()

    def _build_exclusions(self) -> None:
        """Pair-level hard constraints as a CSR list (row -> cols, reason)."""
        E, M, p, cons = self.mentees, self.mentors, self.policy, self.constraints
        found: dict[tuple[int, int], set[HardConstraint]] = defaultdict(set)

        def add(i: int | None, j: int | None, why: HardConstraint) -> None:
            if i is not None and j is not None:
                found[(i, j)].add(why)

        for mentee_id, j in self.mentor_index.items():
            add(self.mentee_index.get(mentee_id), j, HardConstraint.SAME_PERSON)
        mentees_by_ref: dict[str, list[int]] = defaultdict(list)
        mentors_by_ref: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(E):
            if e.employee_ref:
                mentees_by_ref[e.employee_ref].append(i)
        for j, m in enumerate(M):
            if m.employee_ref:
                mentors_by_ref[m.employee_ref].append(j)
        for ref, rows in mentees_by_ref.items():
            for i in rows:
                for j in mentors_by_ref.get(ref, ()):
                    add(i, j, HardConstraint.SAME_PERSON)
        for i, e in enumerate(E):
            for ref in e.line_managers:
                for j in mentors_by_ref.get(ref, ()):
                    add(i, j, HardConstraint.SAME_REPORTING_LINE)
        for j, m in enumerate(M):
            for ref in m.line_managers:
                for i in mentees_by_ref.get(ref, ()):
                    add(i, j, HardConstraint.SAME_REPORTING_LINE)
        if p.exclude_same_manager:
            by_mgr_m: dict[str, list[int]] = defaultdict(list)
            for j, m in enumerate(M):
                if m.manager_ref:
                    by_mgr_m[m.manager_ref].append(j)
            for i, e in enumerate(E):
                if e.manager_ref:
                    for j in by_mgr_m.get(e.manager_ref, ()):
                        add(i, j, HardConstraint.SAME_REPORTING_LINE)
        ei, mi = self.mentee_index, self.mentor_index
        for a, b in cons.earlier_partners:
            add(ei.get(a), mi.get(b), HardConstraint.EARLIER_PARTNER)
            add(ei.get(b), mi.get(a), HardConstraint.EARLIER_PARTNER)
        for a, b in cons.excluded:
            add(ei.get(a), mi.get(b), HardConstraint.HR_EXCLUDED)
        for a, b in cons.declined:
            add(ei.get(a), mi.get(b), HardConstraint.DECLINED)

        self._excl_reasons = found
        keys = sorted(found)
        rows = np.array([i for i, _ in keys], dtype=np.int64)
        cols = np.array([j for _, j in keys], dtype=np.int64)
        self._excl_indptr = np.zeros(self.n_mentees + 1, dtype=np.int64)
        np.add.at(self._excl_indptr, rows + 1, 1)
        np.cumsum(self._excl_indptr, out=self._excl_indptr)
        self._excl_cols = cols

    # ----------------------------------------------------------------- scoring
    @property
    def n_features(self) -> int:
        return int(self._F.shape[1])

    @property
    def capacity(self) -> np.ndarray:
        return self._capacity.copy()

    def _rows(self, rows: slice | np.ndarray | None) -> np.ndarray:
        if rows is None:
            return np.arange(self.n_mentees)
        if isinstance(rows, slice):
            return np.arange(self.n_mentees)[rows]
        return np.asarray(rows, dtype=np.int64)

    def _raw_block(self, rows: slice | np.ndarray | None) -> np.ndarray:
        """Scores of ``rows`` x all mentors; infeasible pairs are below ``_CUT`` (not -inf)."""
        idx = self._rows(rows)
        sel = rows if isinstance(rows, slice) else idx
        if idx.size * self._G.size <= _SMALL_PRODUCT:
            # tiny products: multi-threaded BLAS can cost milliseconds in thread wake-ups on a busy machine
            S = np.einsum("ij,jk->ik", self._F[sel], self._G)
        else:
            S = self._F[sel] @ self._G
        for coef, ve, vm, cat in self._elementwise:
            a, b = ve[idx][:, None], vm[None, :]
            if coef:
                S += coef * cat.raw_vec(a, b)
            if cat.penalty_vec is not None:
                S -= _PENALTY * cat.penalty_vec(a, b)
        if self._entity_same:
            codes = self._entity_e[idx]
            starts, counts = self._entity_ptr[codes], self._entity_ptr[codes + 1] - self._entity_ptr[codes]
            total = int(counts.sum())
            if total:
                local = np.repeat(np.arange(idx.size), counts)
                pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
                S[local, self._entity_mentors[pos]] += self._entity_same
        if self.policy.language_hard or self._lang_coef > 0:
            shared = self._lang_e[sel] @ self._lang_m  # float32 counts (exact)
            np.minimum(shared, 1.0, out=shared)
            if self.policy.language_hard:
                shared *= np.float32(_PENALTY)  # a power of two: exact in float32
                S += shared
            else:
                S += np.float64(self._lang_coef) * shared  # in float64: the coefficient is not exact in float32
        # sparse pair-level exclusions of these rows
        starts, stops = self._excl_indptr[idx], self._excl_indptr[idx + 1]
        counts = stops - starts
        if counts.sum():
            local = np.repeat(np.arange(idx.size), counts)
            pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            S[local, self._excl_cols[pos]] = INFEASIBLE
        if self._dead_cols.size:
            S[:, self._dead_cols] = INFEASIBLE
        return S

    def block(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Scores of ``rows`` x all mentors, float64, ``-inf`` where infeasible."""
        S = self._raw_block(rows)
        S[S < _CUT] = INFEASIBLE
        return S

    def matrix(self) -> np.ndarray:
        return self.block(None)

    def pair_scores(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Scores of the given (row, col) pairs, as in :meth:`block` (to rounding)."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        S = np.einsum("ij,ji->i", self._F[rows], self._G[:, cols])
        for coef, ve, vm, cat in self._elementwise:
            a, b = ve[rows], vm[cols]
            if coef:
                S += coef * cat.raw_vec(a, b)
            if cat.penalty_vec is not None:
                S -= _PENALTY * cat.penalty_vec(a, b)
        if self._entity_same:
            S += np.where(self._entity_e[rows] == self._entity_m[cols], self._entity_same, 0.0)
        if self.policy.language_hard or self._lang_coef > 0:
            shared = np.minimum(np.einsum("ij,ji->i", self._lang_e[rows], self._lang_m[:, cols]), 1.0)
            S += shared * (_PENALTY if self.policy.language_hard else self._lang_coef)
        excluded = self._excl_reasons
        if excluded:
            hit = np.fromiter(((int(i), int(j)) in excluded for i, j in zip(rows, cols)), dtype=bool, count=rows.size)
            S[hit] = INFEASIBLE
        if self._dead_cols.size:
            S[np.isin(cols, self._dead_cols)] = INFEASIBLE
        S[S < _CUT] = INFEASIBLE
        return S

    def candidates(
        self,
        k: int,
        *,
        block_rows: int = 512,
        rows: np.ndarray | None = None,
        exclude_cols: np.ndarray | None = None,
    ) -> CandidateGraph:
        """Each mentee's ``k`` best feasible mentors, sorted by score desc then column.

        ``exclude_cols``: mentors left out entirely (e.g. no capacity left)."""
        idx_all = self._rows(rows)
        n, m = idx_all.size, self.n_mentors
        k = max(0, min(k, m))
        take = min(k + 1, m)
        cols = np.zeros((n, take), dtype=np.int64)
        scores = np.full((n, take), INFEASIBLE)
        for s in range(0, n, block_rows):
            sel = slice(s, min(s + block_rows, n)) if rows is None else idx_all[s : s + block_rows]
            S = self._raw_block(sel)
            if exclude_cols is not None and exclude_cols.size:
                S[:, exclude_cols] = INFEASIBLE
            b = S.shape[0]
            if take == 0:
                continue
            part = np.argpartition(S, m - take, axis=1)[:, m - take :] if take < m else np.tile(np.arange(m), (b, 1))
            ps = np.take_along_axis(S, part, axis=1)
            o = np.lexsort((part, -ps), axis=1)  # score desc, then column asc: deterministic
            cols[s : s + b] = np.take_along_axis(part, o, axis=1)
            scores[s : s + b] = np.take_along_axis(ps, o, axis=1)
        scores[scores < _CUT] = INFEASIBLE
        row_best = scores[:, 0] if take else np.full(n, INFEASIBLE)
        next_best = scores[:, k] if take > k else np.full(n, INFEASIBLE)
        kept_cols, kept_scores = cols[:, :k], scores[:, :k]
        keep = kept_scores > INFEASIBLE
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(keep.sum(axis=1), out=indptr[1:])
        return CandidateGraph(
            n_rows=n,
            n_cols=m,
            indptr=indptr,
            cols=kept_cols[keep].astype(np.int32),
            scores=kept_scores[keep],
            next_best=next_best.copy(),
            row_best=row_best.copy(),
        )

    def violation_counts(self, row: int) -> dict[HardConstraint, int]:
        """For one mentee: how many mentors each hard constraint rules out."""
        p = self.policy
        out: dict[HardConstraint, int] = {}
        if p.language_hard:
            out[HardConstraint.NO_SHARED_LANGUAGE] = int(np.count_nonzero((self._lang_e[row] @ self._lang_m) < 0.5))
        if p.seniority_min_gap is not None:
            bad = seniority_violated(self._levels_e[row], self._levels_m, p.seniority_min_gap)
            out[HardConstraint.SENIORITY] = int(np.count_nonzero(bad))
        if p.tz_hard:
            out[HardConstraint.TIME_ZONE_TOO_FAR] = int(np.count_nonzero(tz_too_far(self._tz_e[row], self._tz_m, p)))
        if self.check_capacity:
            out[HardConstraint.NO_CAPACITY] = int(self._dead_cols.size)
        for j in self._excl_cols[self._excl_indptr[row] : self._excl_indptr[row + 1]]:
            for why in self._excl_reasons[(row, int(j))]:
                out[why] = out.get(why, 0) + 1
        return {k: v for k, v in out.items() if v}


def score_matrix(
    mentees: Sequence[Participant],
    mentors: Sequence[Participant],
    policy: MatchingPolicy,
    constraints: PairConstraints | None = None,
) -> np.ndarray:
    """All mentee x mentor scores (rows in ``mentees`` order), ``-inf`` if infeasible."""
    return ScoreModel(mentees, mentors, policy, constraints).matrix()

