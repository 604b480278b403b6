"""The vectorised twin of ``explain``: both sides encoded once
(``encoding``), whole blocks of mentee x mentor pairs scored as matrices.

Feasible scores are >= 0 and penalised ones below ``CUT``, so top-K
selection needs no masking pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..profiles import HardConstraint, MatchingPolicy, PairConstraints, Participant
from .candidates import CandidateGraph
from .criteria import INFEASIBLE, seniority_violated, tz_too_far
from .encoding import CUT, PENALTY, Elementwise, encode
from .exclusions import build_exclusions

_SMALL_PRODUCT = 1_000_000  # rows * features * mentors below which einsum replaces BLAS


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
        self._enc = encode(self.mentees, self.mentors, policy)
        self._levels_e = np.array([e.job_level for e in self.mentees], dtype=np.int64)
        self._levels_m = np.array([m.job_level for m in self.mentors], dtype=np.int64)
        self._tz_e = np.array([e.tz_offset_hours for e in self.mentees], dtype=np.float64)
        self._tz_m = np.array([m.tz_offset_hours for m in self.mentors], dtype=np.float64)
        self._capacity = np.array([m.capacity for m in self.mentors], dtype=np.int64)
        self._dead_cols = np.flatnonzero(self._capacity <= 0) if check_capacity else np.zeros(0, dtype=np.int64)
        self._excl = build_exclusions(
            self.mentees, self.mentors, self.mentee_index, self.mentor_index, policy, self.constraints
        )

    @property
    def n_features(self) -> int:
        return int(self._enc.F.shape[1])

    @property
    def capacity(self) -> np.ndarray:
        return self._capacity.copy()

    def _rows(self, rows: slice | np.ndarray | None) -> np.ndarray:
        if rows is None:
            return np.arange(self.n_mentees)
        if isinstance(rows, slice):
            return np.arange(self.n_mentees)[rows]
        return np.asarray(rows, dtype=np.int64)

    def _uses_languages(self) -> bool:
        return self.policy.language_hard or self._enc.lang_coef > 0

    def _raw_block(self, rows: slice | np.ndarray | None) -> np.ndarray:
        """Scores of ``rows`` x all mentors; infeasible pairs are below ``CUT`` (not -inf)."""
        enc = self._enc
        idx = self._rows(rows)
        sel = rows if isinstance(rows, slice) else idx
        if idx.size * enc.G.size <= _SMALL_PRODUCT:
            # tiny products: multi-threaded BLAS can cost milliseconds in thread wake-ups on a busy machine
            S = np.einsum("ij,jk->ik", enc.F[sel], enc.G)
        else:
            S = enc.F[sel] @ enc.G
        for el in enc.elementwise:
            self._add_elementwise(S, el, el.mentee_values[idx][:, None], el.mentor_values[None, :])
        ent = enc.entities
        if ent.same:
            codes = ent.mentee_codes[idx]
            local, pos = _csr_positions(ent.ptr[codes], ent.ptr[codes + 1] - ent.ptr[codes])
            S[local, ent.mentors[pos]] += ent.same
        if self._uses_languages():
            shared = enc.lang_e[sel] @ enc.lang_m  # float32 counts (exact)
            np.minimum(shared, 1.0, out=shared)
            if self.policy.language_hard:
                shared *= np.float32(PENALTY)  # a power of two: exact in float32
                S += shared
            else:
                S += np.float64(enc.lang_coef) * shared  # in float64: the coefficient is not exact in float32
        # sparse pair-level exclusions of these rows
        starts = self._excl.indptr[idx]
        local, pos = _csr_positions(starts, self._excl.indptr[idx + 1] - starts)
        S[local, self._excl.cols[pos]] = INFEASIBLE
        if self._dead_cols.size:
            S[:, self._dead_cols] = INFEASIBLE
        return S

    @staticmethod
    def _add_elementwise(S: np.ndarray, el: Elementwise, a: np.ndarray, b: np.ndarray) -> None:
        if el.coef:
            S += el.coef * el.criterion.raw_vec(a, b)
        if el.criterion.penalty_vec is not None:
            S -= PENALTY * el.criterion.penalty_vec(a, b)

    def block(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Scores of ``rows`` x all mentors, float64, ``-inf`` where infeasible."""
        S = self._raw_block(rows)
        S[S < CUT] = INFEASIBLE
        return S

    def matrix(self) -> np.ndarray:
        return self.block(None)

    def pair_scores(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Scores of the given (row, col) pairs, as in :meth:`block` (to rounding)."""
        enc = self._enc
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        S = np.einsum("ij,ji->i", enc.F[rows], enc.G[:, cols])
        for el in enc.elementwise:
            self._add_elementwise(S, el, el.mentee_values[rows], el.mentor_values[cols])
        ent = enc.entities
        if ent.same:
            S += np.where(ent.mentee_codes[rows] == ent.mentor_codes[cols], ent.same, 0.0)
        if self._uses_languages():
            shared = np.minimum(np.einsum("ij,ji->i", enc.lang_e[rows], enc.lang_m[:, cols]), 1.0)
            S += shared * (PENALTY if self.policy.language_hard else enc.lang_coef)
        excluded = self._excl.reasons
        if excluded:
            hit = np.fromiter(((int(i), int(j)) in excluded for i, j in zip(rows, cols)), dtype=bool, count=rows.size)
            S[hit] = INFEASIBLE
        if self._dead_cols.size:
            S[np.isin(cols, self._dead_cols)] = INFEASIBLE
        S[S < CUT] = INFEASIBLE
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
        scores[scores < CUT] = INFEASIBLE
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
            out[HardConstraint.NO_SHARED_LANGUAGE] = int(np.count_nonzero((self._enc.lang_e[row] @ self._enc.lang_m) < 0.5))
        if p.seniority_min_gap is not None:
            bad = seniority_violated(self._levels_e[row], self._levels_m, p.seniority_min_gap)
            out[HardConstraint.SENIORITY] = int(np.count_nonzero(bad))
        if p.tz_hard:
            out[HardConstraint.TIME_ZONE_TOO_FAR] = int(np.count_nonzero(tz_too_far(self._tz_e[row], self._tz_m, p)))
        if self.check_capacity:
            out[HardConstraint.NO_CAPACITY] = int(self._dead_cols.size)
        for j in self._excl.of_row(row):
            for why in self._excl.reasons[(row, int(j))]:
                out[why] = out.get(why, 0) + 1
        return {k: v for k, v in out.items() if v}


def _csr_positions(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For CSR segments ``[starts[r], starts[r] + counts[r])``: each element's
    local row r and its position, as two flat arrays."""
    total = int(counts.sum())
    local = np.repeat(np.arange(starts.size), counts)
    pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
    return local, pos


def score_matrix(
    mentees: Sequence[Participant],
    mentors: Sequence[Participant],
    policy: MatchingPolicy,
    constraints: PairConstraints | None = None,
) -> np.ndarray:
    """All mentee x mentor scores (rows in ``mentees`` order), ``-inf`` if infeasible."""
    return ScoreModel(mentees, mentors, policy, constraints).matrix()
