"""Results arithmetic on known data: scores, the paired maturity delta,
response rates, actions, and k-anonymity withholding."""

from __future__ import annotations

import uuid

import pytest

from libs.events.contexts.evaluation import Phase, SurveyKind
from services.evaluation.domain.errors import InvalidInput
from services.evaluation.domain.language import LanguageSource, survey_language
from services.evaluation.domain.results import Response, check_k, pair_delta, score, summarise

M, F, C, Q = (
    SurveyKind.DIGITAL_MATURITY,
    SurveyKind.SESSION_FEEDBACK,
    SurveyKind.CLOSING_SELF_ASSESSMENT,
    SurveyKind.MENTOR_QUESTIONNAIRE,
)


def test_score_is_the_mean_of_scale_answers() -> None:
    assert score({"a": 2, "b": 4, "c": 3}) == 3
    assert score({"a": 2, "b": 4}, only=["b", "zz"]) == 4
    assert score({}) is None


def test_pair_delta_compares_the_questions_answered_both_times() -> None:
    delta = pair_delta({"a": 2, "b": 3, "c": 1}, {"a": 3, "b": 4, "d": 5})
    assert delta is not None
    assert (delta.pre, delta.post, delta.change, delta.percent) == (2.5, 3.5, 1.0, 40.0)
    assert pair_delta({"a": 2}, {"b": 4}) is None


def test_the_groups_maturity_change_is_the_change_of_the_means_not_the_mean_of_changes() -> None:
    """Pairs 1 -> 2 (+100 %) and 4 -> 4 (0 %): the mean of the pairs' changes
    is 50 %, the change of the means (2.5 -> 3) is 20 %; evaluation shows
    the latter and names it so."""
    rows = []
    for pre, post in ((1, 2), (4, 4), (1, 2), (4, 4)):
        pair, person = uuid.uuid4(), uuid.uuid4()
        rows += [Response(person, pair, M, Phase.PRE, "answered", {"q": pre}),
                 Response(person, pair, M, Phase.POST, "answered", {"q": post})]
    delta = summarise(rows, 3)["maturity"]["delta"]
    assert delta["change_of_means_percent"] == 20.0
    assert delta["delta_percent"] == delta["change_of_means_percent"]  # the older name, kept for clients


def test_k_is_never_below_three() -> None:
    assert check_k(3) == 3
    with pytest.raises(InvalidInput) as exc:
        check_k(2)
    assert exc.value.issues[0].field == "k_anonymity"


def maturity_pair(pre: dict[str, int] | None, post: dict[str, int] | None) -> list[Response]:
    mentee, pair = uuid.uuid4(), uuid.uuid4()
    rows = []
    for phase, answers in ((Phase.PRE, pre), (Phase.POST, post)):
        status = "open" if answers is None else "answered"
        rows.append(Response(mentee, pair, M, phase, status, answers or {}))
    return rows


def test_a_group_summary_on_known_data() -> None:
    # Three mentees with pre and post (means 2 -> 3, 3 -> 3.5, 2.5 -> 4), one with
    # only a pre (3), one that answered nothing (open pre).
    rows = (
        maturity_pair({"a": 2, "b": 2}, {"a": 3, "b": 3})
        + maturity_pair({"a": 3, "b": 3}, {"a": 3, "b": 4})
        + maturity_pair({"a": 2, "b": 3}, {"a": 4, "b": 4})
        + maturity_pair({"a": 3, "b": 3}, None)
        + maturity_pair(None, None)
    )
    people = [uuid.uuid4() for _ in range(3)]
    pair = uuid.uuid4()
    rows += [
        Response(people[0], pair, F, Phase.SESSION, "answered", {"useful": 5}),
        Response(people[0], pair, F, Phase.SESSION, "answered", {"useful": 3}),
        Response(people[1], pair, F, Phase.SESSION, "answered", {"useful": 4}),
        Response(people[2], pair, F, Phase.SESSION, "open"),
        Response(people[2], pair, F, Phase.SESSION, "cancelled"),
        Response(people[0], pair, C, Phase.CLOSING, "answered", {"x": 4}, actions_started=2, actions_planned=1),
        Response(people[1], pair, C, Phase.CLOSING, "answered", {"x": 2}, actions_started=0, actions_planned=3),
    ]
    summary = summarise(rows, k=3)

    maturity = summary["maturity"]
    assert maturity["pre"] == {"respondents": 4, "value": 2.62, "withheld": False}  # (2+3+2.5+3)/4 = 2.625
    assert maturity["post"] == {"respondents": 3, "value": 3.5, "withheld": False}
    # Paired: mean pre (2+3+2.5)/3 = 2.5, mean post (3+3.5+4)/3 = 3.5: +40 %
    assert maturity["delta"] == {"respondents": 3, "pre": 2.5, "post": 3.5, "change_of_means_percent": 40.0,
                                 "delta_percent": 40.0, "withheld": False}

    rates = summary["response_rates"]
    assert rates["digital_maturity_pre"] == {"assigned": 5, "answered": 4, "rate": 0.8}
    assert rates["digital_maturity_post"] == {"assigned": 5, "answered": 3, "rate": 0.6}
    assert rates["session_feedback"] == {"assigned": 4, "answered": 3, "rate": 0.75}  # cancelled not counted
    assert rates["mentor_questionnaire"] == {"assigned": 0, "answered": 0, "rate": None}

    # Feedback: 3 answers from 2 distinct people: fewer than k = 3, withheld.
    assert summary["averages"]["session_feedback"] == {"respondents": 2, "value": None, "withheld": True}
    assert summary["averages"]["closing_self_assessment"]["withheld"] is True
    assert summary["actions"] == {"respondents": 2, "started": None, "planned": None, "withheld": True}

    relaxed = summarise(rows, k=2)
    assert relaxed["averages"]["session_feedback"] == {"respondents": 2, "value": 4.0, "withheld": False}
    assert relaxed["actions"] == {"respondents": 2, "started": 2, "planned": 4, "withheld": False}


def test_withholding_is_per_figure() -> None:
    rows = maturity_pair({"a": 2}, {"a": 3}) + maturity_pair({"a": 4}, None) + maturity_pair({"a": 4}, None)
    summary = summarise(rows, k=3)
    assert summary["maturity"]["pre"] == {"respondents": 3, "value": 3.33, "withheld": False}
    assert summary["maturity"]["post"]["withheld"] is True
    assert summary["maturity"]["delta"] == {
        "respondents": 1, "pre": None, "post": None, "change_of_means_percent": None, "delta_percent": None,
        "withheld": True,
    }


def test_an_empty_group_withholds_everything() -> None:
    summary = summarise([], k=3)
    assert summary["maturity"]["pre"] == {"respondents": 0, "value": None, "withheld": True}
    assert all(figure["withheld"] for figure in summary["averages"].values())


def test_survey_language_prefers_the_profile_then_the_programme_default() -> None:
    assert survey_language(["de", "fr"], ["en", "fr"]) == ("fr", LanguageSource.PROFILE)
    assert survey_language(["de"], ["en", "fr"]) == ("en", LanguageSource.PROGRAMME_DEFAULT)
    assert survey_language(None, ["fr", "en"]) == ("fr", LanguageSource.PROGRAMME_DEFAULT)
