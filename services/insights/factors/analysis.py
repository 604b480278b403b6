"""Success factors (test and learn): which attributes of a pair go with its
success. Pure logic over one row per formed pair.

Every factor splits the pairs in two (``with`` / ``without``); every outcome
compares the two groups (stats.py). A comparison is shown only when both
groups hold at least ``k`` pairs (the programme's anonymity threshold);
otherwise it is listed as suppressed, with no count, so nobody can work out a
small group's result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.insights.factors.stats import mean_difference, risk_difference

#: Thresholds of the yes/no factors (documented in services/insights/README.md).
TENURE_GAP_YEARS = 10
HIGH_SCORE = 70.0
CRITERION_MET = 0.5


@dataclass(frozen=True)
class PairOutcome:
    """One formed pair: who was paired, and how it went."""

    country: str
    status: str  # formed, completed, dissolved
    score: float | None
    criteria: dict[str, float]
    mentee: dict[str, Any]  # entity, business_function, learner_profile, tenure_years, generation_band
    mentor: dict[str, Any]
    sessions_held: int
    maturity_delta_percent: float | None = None
    feedback: float | None = None


Factor = Callable[[PairOutcome], bool | None]


def _same(attribute: str) -> Factor:
    def same(p: PairOutcome) -> bool | None:
        a, b = p.mentee.get(attribute), p.mentor.get(attribute)
        return None if a is None or b is None else a == b

    return same


def _criterion(name: str) -> Factor:
    return lambda p: None if name not in p.criteria else p.criteria[name] >= CRITERION_MET


def _country(code: str) -> Factor:
    return lambda p: p.country == code


BASE_FACTORS: dict[str, Factor] = {
    "same_business_function": _same("business_function"),
    "same_entity": _same("entity"),
    "same_learner_profile": _same("learner_profile"),
    "same_generation": _same("generation_band"),
    "same_country": _same("country"),
    f"tenure_gap_{TENURE_GAP_YEARS}y_or_more": lambda p: abs(p.mentee["tenure_years"] - p.mentor["tenure_years"])
    >= TENURE_GAP_YEARS,
    f"match_score_{HIGH_SCORE:g}_or_more": lambda p: None if p.score is None else p.score >= HIGH_SCORE,
}

# outcome -> (value of a pair or None when unknown, yes/no?)
OUTCOMES: dict[str, tuple[Callable[[PairOutcome], Any], bool]] = {
    "completed": (lambda p: None if p.status == "formed" else p.status == "completed", True),
    "sessions_held": (lambda p: float(p.sessions_held), False),
    "maturity_delta_percent": (lambda p: p.maturity_delta_percent, False),
    "feedback": (lambda p: p.feedback, False),
}


@dataclass
class Analysis:
    k: int
    pairs: int
    factors: list[dict[str, Any]] = field(default_factory=list)


def factors_of(pairs: list[PairOutcome]) -> dict[str, Factor]:
    """The base factors plus one per score criterion and per home country."""
    factors = dict(BASE_FACTORS)
    for name in sorted({c for p in pairs for c in p.criteria}):
        factors[f"criterion_{name}_met"] = _criterion(name)
    for code in sorted({p.country for p in pairs}):
        factors[f"country_{code}"] = _country(code)
    return factors


def analyse(pairs: list[PairOutcome], k: int) -> Analysis:
    analysis = Analysis(k=k, pairs=len(pairs))
    for name, factor in factors_of(pairs).items():
        split = [(factor(p), p) for p in pairs]
        outcomes = {outcome: _compare(split, value, binary, k) for outcome, (value, binary) in OUTCOMES.items()}
        analysis.factors.append({"factor": name, "outcomes": outcomes})
    return analysis


def _compare(split: list[tuple[bool | None, PairOutcome]], value: Callable, binary: bool, k: int) -> dict[str, Any]:
    group = [v for f, p in split if f is True and (v := value(p)) is not None]
    rest = [v for f, p in split if f is False and (v := value(p)) is not None]
    if len(group) < k or len(rest) < k:
        return {"suppressed": True, "reason": f"a group has fewer than {k} pairs"}
    return {"suppressed": False, **(risk_difference(group, rest) if binary else mean_difference(group, rest))}
