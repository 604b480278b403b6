"""Success factors: effect sizes, intervals and the anonymity threshold."""

from __future__ import annotations

import pytest
from scipy import stats as scipy_stats

from libs.events.contexts.evaluation import AnswerItem, QuestionKind
from services.insights.factors.analysis import PairOutcome, analyse
from services.insights.factors.stats import hedges_g, mean_difference, risk_difference
from services.insights.facts.evaluation import scale_score


def test_risk_difference_matches_newcombes_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80,
    # method 10: 0.0524 to 0.3339.
    result = risk_difference([True] * 56 + [False] * 14, [True] * 48 + [False] * 32)
    assert result["estimate"] == pytest.approx(0.2, abs=1e-4)
    assert result["ci95"] == pytest.approx([0.0524, 0.3339], abs=1e-4)


def test_mean_difference_uses_welchs_interval_and_hedges_g() -> None:
    a, b = [4.0, 5.0, 6.0, 5.0], [1.0, 2.0, 1.0, 2.0]
    result = mean_difference(a, b)
    welch = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert result["estimate"] == 3.5
    assert result["ci95"] == [round(welch.low, 4), round(welch.high, 4)]
    assert result["hedges_g"] == pytest.approx(hedges_g(a, b), abs=1e-4) and result["hedges_g"] > 3


def pair(function: str, status: str, sessions: int, country: str = "FR") -> PairOutcome:
    mentee = {"entity": "A", "business_function": "finance", "learner_profile": "mixed", "tenure_years": 12,
              "generation_band": "gen_x", "country": country}
    mentor = {**mentee, "business_function": function, "tenure_years": 1, "generation_band": "gen_z"}
    return PairOutcome(country, status, 80.0, {"theme_fit": 0.9}, mentee, mentor, sessions)


def test_groups_under_the_threshold_are_suppressed_without_counts() -> None:
    pairs = [pair("finance", "completed", 5)] * 4 + [pair("it", "dissolved", 1)] * 2
    result = {f["factor"]: f["outcomes"] for f in analyse(pairs, k=3).factors}
    assert result["same_business_function"]["sessions_held"] == {
        "suppressed": True, "reason": "a group has fewer than 3 pairs"}
    shown = {f["factor"]: f["outcomes"] for f in analyse(pairs, k=2).factors}
    assert shown["same_business_function"]["completed"]["with"] == {"n": 4, "value": 1.0}
    assert "country_FR" in shown and "criterion_theme_fit_met" in shown
    assert shown["tenure_gap_10y_or_more"]["completed"]["suppressed"] is True  # every pair has the gap
    # No spread in either group: the mean difference stands, its interval is undefined.
    assert shown["same_business_function"]["sessions_held"]["ci95"] == [None, None]


def test_a_survey_score_is_the_mean_of_its_scale_answers() -> None:
    answers = [AnswerItem(question_id="a", kind=QuestionKind.SCALE, scale=2),
               AnswerItem(question_id="b", kind=QuestionKind.SCALE, scale=5),
               AnswerItem(question_id="c", kind=QuestionKind.SINGLE_CHOICE, options=["x"])]
    assert scale_score(answers) == 3.5
    assert scale_score(answers[2:]) is None
