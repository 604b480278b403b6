"""The greedy baseline the exact solver is measured against (bench/matching.py,
tests/unit/test_matching_solver.py): take the best remaining feasible pair
until none is left. Not optimal, and never used to match anyone: it lives
with the tests, not in matching's domain."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from services.matching.domain.profiles import MatchingPolicy, PairConstraints, Participant, Role
from services.matching.domain.scoring import INFEASIBLE, ScoreModel
from services.matching.domain.solver import (
    MatchingResult,
    Pair,
    _apply_pins,
    _canonical,
    _edge_rows,
    _fill_and_explain_unmatched,
    _slots,
)

#: Above this many pairs the baseline works on each mentee's top candidates.
GREEDY_DENSE_MAX_PAIRS = 20_000_000


def greedy_match(
    mentees: Sequence[Participant],
    mentors: Sequence[Participant],
    policy: MatchingPolicy | None = None,
    constraints: PairConstraints | None = None,
    *,
    candidate_k: int | None = None,
) -> MatchingResult:
    """Baseline for comparison only: take the best remaining feasible pair until none is left.

    Uses every feasible pair when the matrix is small enough, else each
    mentee's top ``candidate_k``. Not optimal (and ignores the objective).
    """
    t0 = time.perf_counter()
    policy = policy or MatchingPolicy()
    constraints = constraints or PairConstraints()
    mentees_c = _canonical(mentees, Role.MENTEE)
    mentors_c = _canonical(mentors, Role.MENTOR)
    pinned, free, capacity = _apply_pins(mentees_c, mentors_c, policy, constraints)
    model = ScoreModel(free, mentors_c, policy, constraints, check_capacity=False)
    n, m = model.n_mentees, model.n_mentors
    if n * m <= GREEDY_DENSE_MAX_PAIRS and candidate_k is None:
        W = model.matrix()
        rows, cols = np.nonzero(np.isfinite(W))
        scores = W[rows, cols]
        has_feasible = W.max(axis=1) > INFEASIBLE if m else np.zeros(n, dtype=bool)
    else:
        graph = model.candidates(candidate_k or policy.candidate_k)
        has_feasible = graph.row_best > INFEASIBLE
        rows, cols, scores = _edge_rows(graph), graph.cols.astype(np.int64), graph.scores
    order = np.lexsort((cols, rows, -scores))
    rows, cols, scores = rows[order], cols[order], scores[order]
    assignment, picked = greedy_assign(rows, cols, n, capacity)
    pair_score = np.full(n, np.nan)
    pair_score[rows[picked]] = scores[picked]
    unmatched = _fill_and_explain_unmatched(model, assignment, pair_score, capacity)
    chosen = np.flatnonzero(assignment >= 0)
    pairs = pinned + [
        Pair(model.mentees[r].id, model.mentors[int(assignment[r])].id, float(pair_score[r])) for r in chosen
    ]
    pairs.sort(key=lambda p: p.mentee_id)
    total = float(sum(p.score for p in pairs))
    return MatchingResult(
        objective=policy.objective,
        method="greedy",
        pairs=tuple(pairs),
        unmatched=tuple(unmatched),
        total_score=total,
        upper_bound=math.inf,
        matched_upper_bound=len(pinned) + min(int(np.count_nonzero(has_feasible)), _slots(capacity, n)),
        proven_optimal=False,
        stats={"total_s": time.perf_counter() - t0, "mentees": len(mentees_c), "mentors": len(mentors_c)},
    )


def greedy_assign(rows: np.ndarray, cols: np.ndarray, n_rows: int, capacity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy over pairs already sorted best first: (assignment, positions taken)."""
    assignment = [-1] * n_rows
    left = [int(c) for c in capacity]
    picked = []
    todo = n_rows
    for pos, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        if assignment[r] < 0 and left[c] > 0:
            assignment[r] = c
            left[c] -= 1
            picked.append(pos)
            todo -= 1
            if not todo:
                break
    return np.array(assignment, dtype=np.int64), np.array(picked, dtype=np.int64)
