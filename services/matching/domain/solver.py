"""Optimal pairs under mentor capacities, pins and hard constraints.

The problem is a rectangular assignment: each mentor is expanded into as many
identical *slots* as its remaining capacity, each mentee gets a private
"unmatched" column of weight 0, and we maximise the total weight of the chosen
pairs. Weights are the pair scores (objective ``max_total_score``), or the
scores plus a constant ``BIG > 100 * n_mentees`` per pair (objective
``max_matched_then_score``: a solution with more pairs always wins, ties are
broken by score). Infeasible pairs are not edges, so they are never chosen.

Two exact paths:

* ``dense``: the full score matrix and :func:`scipy.optimize.linear_sum_assignment`.
* ``candidates`` (large runs): each mentee's top-K feasible mentors by score,
  solved exactly on that sparse graph with
  :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`, then
  *priced*: mentor prices ``v`` (LP duals, recovered by shortest paths on the
  residual graph) and mentee values ``u = max(0, max_j w_ij - v_j)`` form a
  feasible dual of the full problem once every excluded pair ``(i, j)`` has
  ``w_ij - v_j <= u_i``. Rows where that can fail are rescored in full and
  their profitable mentors added; the loop stops when no excluded pair can
  improve the solution (the solution is then proven optimal for the full
  problem) or after ``max_pricing_rounds``. ``sum(u) + sum(capacity * v)`` is
  an upper bound of the full optimum either way, so every result states its
  gap.

Determinism: inputs are put in canonical order (sorted by id) before anything
else, so the same inputs in any order give the same matrix, the same solver
path and the same pairs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from .profiles import MatchingPolicy, Objective, PairConstraints, Participant, Role
from .scoring import INFEASIBLE, Breakdown, CandidateGraph, ScoreModel, explain

__all__ = [
    "DENSE_MAX_CELLS",
    "InvalidPin",
    "MatchingResult",
    "Pair",
    "Suggestion",
    "Unmatched",
    "UnmatchedReason",
    "assign_dense",
    "assign_graph",
    "assign_sparse",
    "matched_bonus",
    "price_bound",
    "solve",
    "suggest_top_k",
]

AUTO_DENSE_CELLS = 250_000  # auto: small runs go dense directly
SMALL_GRAPH_CELLS = 250_000  # assign_graph: dense assignment below this many cost cells
DENSE_MAX_CELLS = 12_000_000  # auto: exact dense fallback when pricing did not prove the candidate optimum
_TOL = 1e-9


class UnmatchedReason(StrEnum):
    NO_FEASIBLE_MENTOR = "no_feasible_mentor"  # every mentor is ruled out by a hard constraint
    CAPACITY_EXHAUSTED = "capacity_exhausted"  # compatible mentors exist; their slots went to better assignments or pins


class InvalidPin(ValueError):
    def __init__(self, mentee_id: str, mentor_id: str, reasons: Sequence[str]) -> None:
        self.mentee_id, self.mentor_id, self.reasons = mentee_id, mentor_id, tuple(reasons)
        super().__init__(f"pin {mentee_id} -> {mentor_id}: {'; '.join(self.reasons)}")


@dataclass(frozen=True, slots=True)
class Pair:
    mentee_id: str
    mentor_id: str
    score: float
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class Unmatched:
    mentee_id: str
    reason: UnmatchedReason
    detail: Mapping[str, int]  # hard constraint -> mentors it rules out, or compatible_mentors


@dataclass(frozen=True, slots=True)
class Suggestion:
    mentor_id: str
    score: float
    remaining_capacity: int
    breakdown: Breakdown


@dataclass(frozen=True)
class MatchingResult:
    objective: Objective
    method: str  # dense | candidates | empty (greedy: the baseline in tests/support/matching_greedy.py)
    pairs: tuple[Pair, ...]  # sorted by mentee id
    unmatched: tuple[Unmatched, ...]  # sorted by mentee id
    total_score: float  # pins included
    upper_bound: float  # no solution at least as good (same or more pairs) scores more
    matched_upper_bound: int  # no solution matches more mentees
    proven_optimal: bool
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def matched(self) -> int:
        return len(self.pairs)

    @property
    def gap(self) -> float:
        """Relative score gap to the upper bound (0 when proven optimal)."""
        if self.upper_bound <= 0 or not math.isfinite(self.upper_bound):
            return 0.0
        return max(0.0, (self.upper_bound - self.total_score) / self.upper_bound)

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective.value,
            "method": self.method,
            "pairs": [
                {"mentee_id": p.mentee_id, "mentor_id": p.mentor_id, "score": p.score, "pinned": p.pinned}
                for p in self.pairs
            ],
            "unmatched": [
                {"mentee_id": u.mentee_id, "reason": u.reason.value, "detail": dict(u.detail)} for u in self.unmatched
            ],
            "total_score": self.total_score,
            "matched": self.matched,
            "upper_bound": self.upper_bound,
            "matched_upper_bound": self.matched_upper_bound,
            "gap": self.gap,
            "proven_optimal": self.proven_optimal,
            "stats": dict(self.stats),
        }


# --------------------------------------------------------------------------- assignment kernels


def matched_bonus(objective: Objective, n_rows: int) -> float:
    """Weight added per chosen pair: 0, or a power of two above any score total."""
    if objective is Objective.MAX_MATCHED_THEN_SCORE:
        return float(2.0 ** math.ceil(math.log2(100.0 * (n_rows + 1) + 1.0)))
    return 0.0


def assign_dense(scores: np.ndarray, capacity: np.ndarray, objective: Objective = Objective.MAX_TOTAL_SCORE) -> np.ndarray:
    """Exact optimum on a full score matrix (``-inf`` = infeasible).

    Returns the mentor column of each row, or -1 for unmatched rows.
    """
    n, m = scores.shape
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    feasible_col = np.isfinite(scores).any(axis=0)
    slots = np.where(feasible_col, np.minimum(np.asarray(capacity, dtype=np.int64), n), 0).clip(min=0)
    slot_col = np.repeat(np.arange(m), slots)
    s = slot_col.size
    if s == 0:
        return out
    bonus = matched_bonus(objective, n)
    cost = np.zeros((n, s + n))
    np.negative(scores[:, slot_col], out=cost[:, :s])  # -(-inf) = +inf: forbidden
    if bonus:
        cost[:, :s] -= bonus
    rows, cols = linear_sum_assignment(cost)
    real = cols < s
    out[rows[real]] = slot_col[cols[real]]
    return out


def _edge_rows(graph: CandidateGraph) -> np.ndarray:
    return np.repeat(np.arange(graph.n_rows), np.diff(graph.indptr))


def assign_sparse(graph: CandidateGraph, capacity: np.ndarray, objective: Objective = Objective.MAX_TOTAL_SCORE) -> np.ndarray:
    """Exact optimum on a candidate graph (slot expansion + LAPJVsp)."""
    n, m = graph.n_rows, graph.n_cols
    out = np.full(n, -1, dtype=np.int64)
    capacity = np.asarray(capacity, dtype=np.int64)
    rows, cols = _edge_rows(graph), graph.cols.astype(np.int64)
    ok = capacity[cols] > 0
    rows, cols, w = rows[ok], cols[ok], graph.scores[ok] + matched_bonus(objective, n)
    if n == 0 or rows.size == 0:
        return out
    degree = np.bincount(cols, minlength=m)
    slots = np.minimum(capacity.clip(min=0), degree)
    base = np.concatenate(([0], np.cumsum(slots)[:-1]))
    s = int(slots.sum())
    rep = slots[cols]
    r2 = np.repeat(rows, rep)
    j2 = np.repeat(cols, rep)
    w2 = np.repeat(w, rep)
    offs = np.arange(r2.size) - np.repeat(np.cumsum(rep) - rep, rep)
    slot = base[j2] + offs
    top = float(w2.max()) + 1.0
    data = np.concatenate((top - w2, np.full(n, top)))  # all >= 1: the solver wants non-zero weights
    rr = np.concatenate((r2, np.arange(n)))
    cc = np.concatenate((slot, s + np.arange(n)))
    biadjacency = sp.csr_array((data, (rr, cc)), shape=(n, s + n))
    r, c = min_weight_full_bipartite_matching(biadjacency)
    slot_mentor = np.repeat(np.arange(m), slots)
    real = c < s
    out[r[real]] = slot_mentor[c[real]]
    return out


def assign_graph(graph: CandidateGraph, capacity: np.ndarray, objective: Objective = Objective.MAX_TOTAL_SCORE) -> np.ndarray:
    """Exact optimum on a candidate graph: dense assignment when the graph is small
    (less overhead), else :func:`assign_sparse`. Same optimum either way."""
    n, m = graph.n_rows, graph.n_cols
    slots = int(np.minimum(np.asarray(capacity, dtype=np.int64).clip(min=0), n).sum())
    if n * (slots + n) <= SMALL_GRAPH_CELLS:
        W = np.full((n, m), INFEASIBLE)
        W[_edge_rows(graph), graph.cols] = graph.scores
        return assign_dense(W, capacity, objective)
    return assign_sparse(graph, capacity, objective)


def _row_max(values: np.ndarray, graph: CandidateGraph) -> np.ndarray:
    """Per-row max of an edge array (``-inf`` for empty rows)."""
    out = np.full(graph.n_rows, -np.inf)
    counts = np.diff(graph.indptr)
    nz = counts > 0
    if values.size:
        out[nz] = np.maximum.reduceat(values, graph.indptr[:-1][nz])
    return out


def _shortest_paths(root: int, src: np.ndarray, dst: np.ndarray, cost: np.ndarray, n_nodes: int) -> np.ndarray | None:
    """Bellman-Ford from ``root`` that only relaxes the edges of nodes improved in the
    previous pass (queue-based, vectorised), stopping as soon as nothing improves.
    (scipy's ``bellman_ford`` always runs all ``n_nodes`` passes.)
    Returns None on a negative cycle."""
    order = np.argsort(src, kind="stable")
    src, dst, cost = src[order], dst[order], cost[order]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    dist = np.full(n_nodes, np.inf)
    dist[root] = 0.0
    frontier = np.array([root], dtype=np.int64)
    for _ in range(n_nodes + 1):
        starts, counts = indptr[frontier], indptr[frontier + 1] - indptr[frontier]
        total = int(counts.sum())
        if total == 0:
            return dist
        pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
        tgt = dst[pos]
        cand = np.repeat(dist[frontier], counts) + cost[pos]
        o = np.lexsort((cand, tgt))
        tgt, cand = tgt[o], cand[o]
        first = np.concatenate(([True], tgt[1:] != tgt[:-1]))
        tgt, cand = tgt[first], cand[first]
        better = cand < dist[tgt]
        if not better.any():
            return dist
        frontier = tgt[better]
        dist[frontier] = cand[better]
    return None


def price_bound(
    graph: CandidateGraph,
    capacity: np.ndarray,
    assignment: np.ndarray,
    objective: Objective = Objective.MAX_TOTAL_SCORE,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Mentor prices ``v`` and mentee values ``u`` from an optimal assignment.

    ``v`` are the least LP duals consistent with the assignment (shortest paths
    on its residual graph, queue-based Bellman-Ford); ``u_i = max(0, max over
    row i's edges of w_ij - v_j)``. Whatever ``v >= 0`` is, ``(u, v)`` is dual
    feasible on the graph, so ``sum(u) + sum(capacity * v)`` (returned third)
    bounds the graph's optimum; it equals it when the assignment is optimal.
    """
    n, m = graph.n_rows, graph.n_cols
    capacity = np.asarray(capacity, dtype=np.int64)
    bonus = matched_bonus(objective, n)
    rows, cols = _edge_rows(graph), graph.cols.astype(np.int64)
    w = graph.scores + bonus
    ok = capacity[cols] > 0
    v = np.zeros(m)
    if rows.size and ok.any():
        rows_k, cols_k, w_k = rows[ok], cols[ok], w[ok]
        matched = assignment >= 0
        used = np.bincount(assignment[matched], minlength=m)
        w_match = np.full(n, np.nan)
        hit = cols_k == assignment[rows_k]
        w_match[rows_k[hit]] = w_k[hit]
        eps = 1e-12 * max(1.0, float(np.abs(w_k).max()))  # absorbs rounding in cycles
        root = m
        is_matched_edge_row = matched[rows_k]
        a_parts, b_parts, c_parts = [], [], []
        # matched i -> m(i): v_m(i) - v_j <= w_im - w_ij   (edge m(i) -> j)
        sel = is_matched_edge_row & ~hit
        a_parts.append(assignment[rows_k[sel]])
        b_parts.append(cols_k[sel])
        c_parts.append(w_match[rows_k[sel]] - w_k[sel] + eps)
        # matched i: u_i = w_im - v_m >= 0                (edge m(i) -> root)
        mi = np.flatnonzero(matched)
        a_parts.append(assignment[mi])
        b_parts.append(np.full(mi.size, root))
        c_parts.append(w_match[mi] + eps)
        # unmatched i: v_j >= w_ij                         (edge root -> j)
        sel = ~is_matched_edge_row
        a_parts.append(np.full(int(sel.sum()), root))
        b_parts.append(cols_k[sel])
        c_parts.append(-w_k[sel] + eps)
        # mentor not full: v_j <= 0 ; every mentor: v_j >= 0
        nf = np.flatnonzero(used < capacity)
        a_parts += [nf, np.full(m, root)]
        b_parts += [np.full(nf.size, root), np.arange(m)]
        c_parts += [np.zeros(nf.size), np.zeros(m)]
        a = np.concatenate(a_parts).astype(np.int64)
        b = np.concatenate(b_parts).astype(np.int64)
        c = np.concatenate(c_parts)
        key = a * (m + 1) + b
        order = np.lexsort((c, key))
        key, c = key[order], c[order]
        first = np.concatenate(([True], key[1:] != key[:-1]))
        key, c = key[first], c[first]
        dist = _shortest_paths(root, key // (m + 1), key % (m + 1), c, m + 1)
        if dist is not None:
            v = np.where(np.isfinite(dist[:m]), -dist[:m], 0.0).clip(min=0.0)
        # else: a negative cycle, only if the assignment was not optimal; v = 0 still gives a valid bound
    u = _row_max(np.where(ok, w - v[cols], -np.inf), graph).clip(min=0.0)
    return u, v, float(u.sum() + (capacity.clip(min=0) * v).sum())


# --------------------------------------------------------------------------- orchestration


def _canonical(people: Sequence[Participant], role: Role) -> tuple[Participant, ...]:
    out = tuple(sorted(people, key=lambda p: p.id))
    for p in out:
        if p.role is not role:
            raise ValueError(f"{p.id} has role {p.role.value}, expected {role.value}")
    for a, b in zip(out, out[1:]):
        if a.id == b.id:
            raise ValueError(f"duplicate {role.value} id {a.id}")
    return out


def _apply_pins(
    mentees: tuple[Participant, ...],
    mentors: tuple[Participant, ...],
    policy: MatchingPolicy,
    constraints: PairConstraints,
) -> tuple[list[Pair], tuple[Participant, ...], np.ndarray]:
    by_mentee = {p.id: p for p in mentees}
    mentor_pos = {p.id: j for j, p in enumerate(mentors)}
    capacity = np.array([m.capacity for m in mentors], dtype=np.int64)
    pinned: list[Pair] = []
    seen: set[str] = set()
    for a, b in sorted(set(constraints.pinned)):
        if a not in by_mentee or b not in mentor_pos:
            raise InvalidPin(a, b, ["unknown mentee or mentor"])
        if a in seen:
            raise InvalidPin(a, b, ["mentee pinned to more than one mentor"])
        bd = explain(by_mentee[a], mentors[mentor_pos[b]], policy, constraints, check_capacity=False)
        if not bd.feasible:
            raise InvalidPin(a, b, bd.reasons)
        if capacity[mentor_pos[b]] <= 0:
            raise InvalidPin(a, b, ["pins exceed the mentor's capacity"])
        capacity[mentor_pos[b]] -= 1
        seen.add(a)
        pinned.append(Pair(a, b, bd.total, pinned=True))
    free = tuple(p for p in mentees if p.id not in seen)
    return pinned, free, capacity


def _fill_and_explain_unmatched(
    model: ScoreModel,
    assignment: np.ndarray,
    scores: np.ndarray,
    capacity: np.ndarray,
) -> list[Unmatched]:
    """Give spare compatible capacity to unmatched rows, best score first (never
    lowers the total: at an exact optimum only zero-score pairs can be added),
    then say why the others stay unmatched. Updates ``assignment``/``scores``."""
    left = capacity - np.bincount(assignment[assignment >= 0], minlength=model.n_mentors)
    rows = np.flatnonzero(assignment < 0)
    n_feasible = np.zeros(rows.size, dtype=np.int64)
    for s in range(0, rows.size if model.n_mentors else 0, 256):
        chunk = rows[s : s + 256]
        S = model.block(chunk)  # feasibility regardless of capacity: tells the two reasons apart
        n_feasible[s : s + 256] = np.count_nonzero(S > INFEASIBLE, axis=1)
        for local, r in enumerate(chunk):
            row = np.where(left > 0, S[local], INFEASIBLE)
            j = int(np.argmax(row))  # first index among ties: deterministic
            if row[j] > INFEASIBLE:
                assignment[r], scores[r] = j, row[j]
                left[j] -= 1
    unmatched = []
    for r, count in zip(rows, n_feasible):
        if assignment[r] >= 0:
            continue
        mentee = model.mentees[r]
        if count == 0:
            detail = {k.value: v for k, v in sorted(model.violation_counts(int(r)).items())}
            unmatched.append(Unmatched(mentee.id, UnmatchedReason.NO_FEASIBLE_MENTOR, detail))
        else:
            unmatched.append(Unmatched(mentee.id, UnmatchedReason.CAPACITY_EXHAUSTED, {"compatible_mentors": int(count)}))
    return unmatched


def _edge_scores(graph: CandidateGraph, assignment: np.ndarray) -> np.ndarray:
    """Score of each row's assigned edge in the graph (nan if unassigned)."""
    out = np.full(graph.n_rows, np.nan)
    rows = _edge_rows(graph)
    hit = graph.cols == assignment[rows]
    out[rows[hit]] = graph.scores[hit]
    return out


def _slots(capacity: np.ndarray, n_rows: int) -> int:
    return int(np.minimum(capacity.clip(min=0), n_rows).sum())


def solve(
    mentees: Sequence[Participant],
    mentors: Sequence[Participant],
    policy: MatchingPolicy | None = None,
    constraints: PairConstraints | None = None,
    *,
    method: str = "auto",
    candidate_k: int | None = None,
    max_pricing_rounds: int = 6,
) -> MatchingResult:
    """The optimal pairs for the policy's objective (see module docstring).

    ``method``: ``"dense"``, ``"candidates"`` or ``"auto"`` (dense for small
    runs; else candidates, falling back to dense when pricing did not prove
    optimality and the cost matrix has at most :data:`DENSE_MAX_CELLS` cells).
    Raises :class:`InvalidPin` for a pin that breaks a hard constraint or a capacity.
    """
    t0 = time.perf_counter()
    policy = policy or MatchingPolicy()
    constraints = constraints or PairConstraints()
    objective = policy.objective
    mentees_c = _canonical(mentees, Role.MENTEE)
    mentors_c = _canonical(mentors, Role.MENTOR)
    pinned, free, capacity = _apply_pins(mentees_c, mentors_c, policy, constraints)
    model = ScoreModel(free, mentors_c, policy, constraints, check_capacity=False)
    t_encode = time.perf_counter()
    n, m = model.n_mentees, model.n_mentors
    k = candidate_k or policy.candidate_k
    bonus = matched_bonus(objective, n)
    pinned_total = float(sum(p.score for p in pinned))
    dense_cells = n * (_slots(capacity, n) + n)
    auto = method == "auto"
    if auto:
        method = "dense" if (m <= k or dense_cells <= AUTO_DENSE_CELLS) else "candidates"
    if method not in ("dense", "candidates"):
        raise ValueError(f"unknown method {method!r}")
    stats: dict[str, Any] = {"mentees": len(mentees_c), "mentors": len(mentors_c), "pinned": len(pinned)}
    stats["slots"] = _slots(capacity, max(n, 1))
    if n == 0 or m == 0:
        method = "empty"
        assignment = np.full(n, -1, dtype=np.int64)
        pair_score = np.full(n, np.nan)
        row_best = np.full(n, INFEASIBLE)
        ub_w, info = 0.0, {}
    else:
        assignment, pair_score, row_best, ub_w, info = _optimise(model, capacity, objective, method, k, max_pricing_rounds)
        if auto and method == "candidates" and not info["proven"] and dense_cells <= DENSE_MAX_CELLS:
            stats["candidates_not_proven"] = {key: info[key] for key in ("candidate_edges", "pricing_rounds")}
            method = "dense"  # exact fallback
            assignment, pair_score, row_best, ub_w, info = _optimise(model, capacity, objective, method, k, 0)
    stats.update({key: v for key, v in info.items() if key != "proven"})
    t_solve = time.perf_counter()

    has_feasible = row_best > INFEASIBLE  # among mentors with capacity left
    unmatched = _fill_and_explain_unmatched(model, assignment, pair_score, capacity)
    chosen = np.flatnonzero(assignment >= 0)
    scores = pair_score[chosen]
    pairs = pinned + [Pair(model.mentees[r].id, model.mentors[int(assignment[r])].id, float(s)) for r, s in zip(chosen, scores)]
    pairs.sort(key=lambda p: p.mentee_id)
    free_total = float(scores.sum())
    total = pinned_total + free_total
    value = free_total + bonus * chosen.size
    tol = _TOL * max(1.0, abs(ub_w))
    rowmax_bound = float(row_best[np.isfinite(row_best)].sum())
    if bonus:
        matched_ub = int(math.floor((ub_w + tol) / bonus))
        score_ub = min(ub_w - bonus * chosen.size, 100.0 * n)
    else:
        matched_ub = min(int(np.count_nonzero(has_feasible)), _slots(capacity, n))
        score_ub = min(ub_w, rowmax_bound)
    score_ub = max(score_ub, free_total)
    proven = (ub_w - value) <= tol and (not bonus or matched_ub == chosen.size)
    stats.update(
        method=method,
        upper_bound_dual=pinned_total + (ub_w - bonus * chosen.size if bonus else ub_w),
        upper_bound_row_max=pinned_total + rowmax_bound,
        encode_s=t_encode - t0,
        score_and_solve_s=t_solve - t_encode,
        total_s=time.perf_counter() - t0,
    )
    return MatchingResult(
        objective=objective,
        method=method,
        pairs=tuple(pairs),
        unmatched=tuple(unmatched),
        total_score=total,
        upper_bound=pinned_total + score_ub,
        matched_upper_bound=len(pinned) + max(matched_ub, chosen.size),
        proven_optimal=bool(proven),
        stats=stats,
    )


def _optimise(
    model: ScoreModel,
    capacity: np.ndarray,
    objective: Objective,
    method: str,
    k: int,
    max_rounds: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, dict[str, Any]]:
    """(assignment, score of each row's pair, each row's best score, upper bound of the weighted optimum, info)."""
    n = model.n_mentees
    bonus = matched_bonus(objective, n)
    t0 = time.perf_counter()
    dead = np.flatnonzero(np.asarray(capacity) <= 0)  # no slot: never a candidate
    if method == "dense":
        W = model.matrix()
        W[:, dead] = INFEASIBLE
        t1 = time.perf_counter()
        row_best = W.max(axis=1)
        assignment = assign_dense(W, capacity, objective)
        pair_score = np.where(assignment >= 0, W[np.arange(n), assignment.clip(min=0)], np.nan)
        chosen = assignment >= 0
        ub_w = float(pair_score[chosen].sum() + bonus * chosen.sum())  # the exact optimum
        info: dict[str, Any] = {"proven": True}
    else:
        graph = model.candidates(k, exclude_cols=dead)
        t1 = time.perf_counter()
        row_best = graph.row_best
        assignment, graph, ub_w, rounds, rescored = _solve_priced(model, graph, capacity, objective, max_rounds)
        pair_score = _edge_scores(graph, assignment)
        chosen = assignment >= 0
        value = float(pair_score[chosen].sum() + bonus * chosen.sum())
        proven = ub_w - value <= _TOL * max(1.0, abs(ub_w))
        info = {
            "proven": proven,
            "candidate_k": k,
            "candidate_edges": graph.n_edges,
            "pricing_rounds": rounds,
            "rescored_rows": rescored,
        }
    info.update(method=method, score_s=t1 - t0, solve_s=time.perf_counter() - t1)
    return assignment, pair_score, row_best, ub_w, info


def _solve_priced(
    model: ScoreModel,
    graph: CandidateGraph,
    capacity: np.ndarray,
    objective: Objective,
    max_rounds: int,
) -> tuple[np.ndarray, CandidateGraph, float, int, int]:
    """Candidate-graph optimum + pricing rounds; returns (assignment, graph, upper bound on the weighted optimum, rounds, rows rescored)."""
    n = graph.n_rows
    bonus = matched_bonus(objective, n)
    dead = np.flatnonzero(np.asarray(capacity) <= 0)
    k_add = max(8, int(np.diff(graph.indptr).max(initial=0)) // 2)
    rescored_total = 0
    rounds = 0
    while True:
        assignment = assign_graph(graph, capacity, objective)
        u, v, _ = price_bound(graph, capacity, assignment, objective)
        tol = _TOL * max(1.0, float(np.abs(u).max(initial=0.0)) + float(v.max(initial=0.0)))
        # best excluded value of each row: bounded by its best excluded score (v >= 0)
        excluded = np.where(np.isfinite(graph.next_best), graph.next_best + bonus, -np.inf)
        suspect = np.flatnonzero(excluded > u + tol)
        if suspect.size == 0:
            break
        # exact check of suspect rows: rescore them in full
        new_r, new_c, new_s = [], [], []
        next_best = graph.next_best.copy()
        for s in range(0, suspect.size, 512):
            chunk = suspect[s : s + 512]
            S = model.block(chunk)
            S[:, dead] = INFEASIBLE
            in_graph = np.zeros(S.shape, dtype=bool)
            for local, r in enumerate(chunk):
                in_graph[local, graph.cols[graph.row_slice(int(r))]] = True
            S_out = np.where(in_graph, INFEASIBLE, S)
            reduced = S_out + bonus - v[None, :] - u[chunk][:, None]
            best_reduced = reduced.max(axis=1)
            excluded[chunk] = (S_out + bonus - v[None, :]).max(axis=1)
            for local, r in enumerate(chunk):
                if best_reduced[local] <= tol:
                    continue
                row = reduced[local]
                take = min(k_add, int(np.count_nonzero(row > tol)))
                idx = np.argpartition(-row, take - 1)[:take] if take < row.size else np.arange(row.size)
                idx = idx[row[idx] > tol]
                new_r.append(np.full(idx.size, r))
                new_c.append(idx)
                new_s.append(S[local, idx])
                rest = S_out[local].copy()
                rest[idx] = INFEASIBLE
                next_best[r] = rest.max()
        rescored_total += int(suspect.size)
        if not new_r or rounds >= max_rounds:
            break  # every excluded pair checked exactly (or out of rounds)
        rounds += 1
        graph = graph.with_edges(np.concatenate(new_r), np.concatenate(new_c), np.concatenate(new_s), next_best=next_best)
    ub = float(np.maximum(u, excluded).sum() + (capacity.clip(min=0) * v).sum())
    return assignment, graph, ub, rounds, rescored_total


def suggest_top_k(
    mentee: Participant,
    mentors: Sequence[Participant],
    policy: MatchingPolicy | None = None,
    constraints: PairConstraints | None = None,
    *,
    k: int | None = None,
    taken: Mapping[str, int] | None = None,
) -> tuple[Suggestion, ...]:
    """The ``k`` best feasible mentors with capacity left, best first, with breakdowns.

    ``taken``: seats already held per mentor id (formed pairs and open
    proposals), so a mentor is never offered beyond its capacity. Ties are
    broken by mentor id.
    """
    policy = policy or MatchingPolicy()
    constraints = constraints or PairConstraints()
    k = k or policy.top_k
    taken = taken or {}
    mentors_c = _canonical(mentors, Role.MENTOR)
    if not mentors_c:
        return ()
    remaining = np.array([m.capacity - int(taken.get(m.id, 0)) for m in mentors_c], dtype=np.int64)
    model = ScoreModel([mentee], mentors_c, policy, constraints, check_capacity=False)
    row = model.block(np.array([0]))[0]
    row[remaining <= 0] = INFEASIBLE
    idx = np.flatnonzero(row > INFEASIBLE)
    idx = idx[np.lexsort((idx, -row[idx]))][:k]
    out = []
    for j in idx:
        mentor = mentors_c[int(j)]
        bd = explain(mentee, mentor, policy, constraints, check_capacity=False)
        out.append(Suggestion(mentor.id, bd.total, int(remaining[j]), bd))
    return tuple(out)
