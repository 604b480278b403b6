"""Pair scores in [0, 100], explained per criterion, and their vectorised twin.

Score of a feasible pair = ``100 * sum(share_c * raw_c)`` where ``raw_c`` is in
[0, 1] and ``share_c = weight_c / sum(weights)``. An infeasible pair (a hard
constraint holds) scores ``-inf``.

By concern:

* ``criteria`` — the raw value of each criterion and the hard constraints'
  tests: the single definition both implementations call.
* ``breakdown`` — :func:`explain` scores one pair in plain Python and says
  why (per criterion raw value, weight, contribution; the hard constraints
  that make it infeasible). This is what HR and participants see.
* ``encoding`` — both sides encoded once so that the sum of every criterion
  is one matrix product ``F @ G`` done by BLAS; ``exclusions`` — pair-level
  hard constraints as a sparse list.
* ``model`` — :class:`ScoreModel` scores whole blocks of mentee x mentor
  pairs; ``candidates`` — each mentee's best mentors as a sparse graph.

Both implementations call the same raw-value functions, so they agree to
floating-point rounding (tests check |diff| < 1e-9).
"""

from .breakdown import Breakdown, CriterionScore, explain, hard_violations
from .candidates import CandidateGraph
from .criteria import INFEASIBLE, mentor_time_per_mentee
from .model import ScoreModel, score_matrix

__all__ = [
    "INFEASIBLE",
    "Breakdown",
    "CandidateGraph",
    "CriterionScore",
    "ScoreModel",
    "explain",
    "hard_violations",
    "mentor_time_per_mentee",
    "score_matrix",
]
