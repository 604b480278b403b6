"""Pure domain core of the matching service: profiles, explainable scores, optimal pairs.

No I/O here: the service layer (API, consumers, event store) builds these
objects from its own copy of enrollment events and records the results.
"""

from .profiles import (
    Criterion,
    HardConstraint,
    LearnerProfile,
    MatchingPolicy,
    Objective,
    PairConstraints,
    Participant,
    Role,
)
from .scoring import Breakdown, CandidateGraph, CriterionScore, ScoreModel, explain, hard_violations, score_matrix
from .solver import (
    InvalidPin,
    MatchingResult,
    Pair,
    Suggestion,
    Unmatched,
    UnmatchedReason,
    assign_dense,
    assign_graph,
    assign_sparse,
    price_bound,
    solve,
    suggest_top_k,
)

__all__ = [
    "Breakdown",
    "CandidateGraph",
    "Criterion",
    "CriterionScore",
    "HardConstraint",
    "InvalidPin",
    "LearnerProfile",
    "MatchingPolicy",
    "MatchingResult",
    "Objective",
    "Pair",
    "PairConstraints",
    "Participant",
    "Role",
    "ScoreModel",
    "Suggestion",
    "Unmatched",
    "UnmatchedReason",
    "assign_dense",
    "assign_graph",
    "assign_sparse",
    "explain",
    "hard_violations",
    "price_bound",
    "score_matrix",
    "solve",
    "suggest_top_k",
]
