"""Each mentee's best feasible mentors as a sparse graph, for large runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

