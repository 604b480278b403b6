"""Pair-level hard constraints (same person, reporting line, earlier
partner, HR exclusion, declined proposal) as a sparse list per mentee row:
they hold for few pairs, so a CSR list is cheaper than a dense mask."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..profiles import HardConstraint, MatchingPolicy, PairConstraints, Participant


@dataclass(frozen=True)
class Exclusions:
    """Row i's excluded columns are ``cols[indptr[i]:indptr[i + 1]]``."""

    reasons: dict[tuple[int, int], set[HardConstraint]]
    indptr: np.ndarray
    cols: np.ndarray

    def of_row(self, row: int) -> np.ndarray:
        return self.cols[self.indptr[row] : self.indptr[row + 1]]


def build_exclusions(
    mentees: Sequence[Participant],
    mentors: Sequence[Participant],
    mentee_index: dict[str, int],
    mentor_index: dict[str, int],
    policy: MatchingPolicy,
    constraints: PairConstraints,
) -> Exclusions:
    found: dict[tuple[int, int], set[HardConstraint]] = defaultdict(set)

    def add(i: int | None, j: int | None, why: HardConstraint) -> None:
        if i is not None and j is not None:
            found[(i, j)].add(why)

    for mentee_id, j in mentor_index.items():
        add(mentee_index.get(mentee_id), j, HardConstraint.SAME_PERSON)
    mentees_by_ref = _rows_by(e.employee_ref for e in mentees)
    mentors_by_ref = _rows_by(m.employee_ref for m in mentors)
    for ref, rows in mentees_by_ref.items():
        for i in rows:
            for j in mentors_by_ref.get(ref, ()):
                add(i, j, HardConstraint.SAME_PERSON)
    for i, e in enumerate(mentees):
        for ref in e.line_managers:
            for j in mentors_by_ref.get(ref, ()):
                add(i, j, HardConstraint.SAME_REPORTING_LINE)
    for j, m in enumerate(mentors):
        for ref in m.line_managers:
            for i in mentees_by_ref.get(ref, ()):
                add(i, j, HardConstraint.SAME_REPORTING_LINE)
    if policy.exclude_same_manager:
        by_mgr_m = _rows_by(m.manager_ref for m in mentors)
        for i, e in enumerate(mentees):
            if e.manager_ref:
                for j in by_mgr_m.get(e.manager_ref, ()):
                    add(i, j, HardConstraint.SAME_REPORTING_LINE)
    ei, mi = mentee_index, mentor_index
    for a, b in constraints.earlier_partners:
        add(ei.get(a), mi.get(b), HardConstraint.EARLIER_PARTNER)
        add(ei.get(b), mi.get(a), HardConstraint.EARLIER_PARTNER)
    for a, b in constraints.excluded:
        add(ei.get(a), mi.get(b), HardConstraint.HR_EXCLUDED)
    for a, b in constraints.declined:
        add(ei.get(a), mi.get(b), HardConstraint.DECLINED)

    keys = sorted(found)
    rows = np.array([i for i, _ in keys], dtype=np.int64)
    cols = np.array([j for _, j in keys], dtype=np.int64)
    indptr = np.zeros(len(mentees) + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    np.cumsum(indptr, out=indptr)
    return Exclusions(reasons=found, indptr=indptr, cols=cols)


def _rows_by(refs) -> dict[str, list[int]]:
    """Row indices by reference (people without one are left out)."""
    out: dict[str, list[int]] = defaultdict(list)
    for i, ref in enumerate(refs):
        if ref:
            out[ref].append(i)
    return out
