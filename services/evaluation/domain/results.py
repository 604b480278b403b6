"""The arithmetic of results: scores, the pre/post maturity delta, and group
summaries that withhold what fewer than k people answered.

* An answer's score is the mean of its 1-5 scale answers; choice and
  free-text answers never enter a score (free text never enters a result).
* A pair's maturity delta compares the mentee's pre and post answers on the
  scale questions answered both times (the post-questionnaire uses the
  pre-questionnaire's version, so normally all of them).
* A group's maturity change in percent is paired and is the *change of the
  means*: over the mentees who answered both, ``(mean post - mean pre) /
  mean pre * 100`` (``change_of_means_percent``). It is not the mean of the
  pairs' own changes (insights' ``maturity_mean_pair_change_percent``), which
  weighs a low starting score more; insights shows both under these names.
  ``delta_percent`` is the older name of ``change_of_means_percent``, kept
  for existing clients.
* k-anonymity: each figure counts its own respondents (distinct people); a
  figure from fewer than k of them is withheld (``value`` null,
  ``withheld`` true). Response rates describe participation, not answers,
  and are always shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any
from uuid import UUID

from libs.events.contexts.evaluation import Phase, SurveyKind
from services.evaluation.domain.errors import InvalidInput, Issue

K_MIN = 3  # never below: a group of 2 lets each member infer the other's answer
K_DEFAULT = 5


def check_k(k: int) -> int:
    if k < K_MIN:
        raise InvalidInput([Issue("k_anonymity", f"At least {K_MIN}: smaller groups are not anonymous.")])
    return k


def score(scale: Mapping[str, int], only: Iterable[str] | None = None) -> float | None:
    """The mean of the scale answers (of ``only`` those questions), or None."""
    keys = list(scale) if only is None else [q for q in only if q in scale]
    return fmean(scale[q] for q in keys) if keys else None


def percent(before: float, after: float) -> float:
    return (after - before) / before * 100


@dataclass(frozen=True)
class Delta:
    pre: float
    post: float

    @property
    def change(self) -> float:
        return self.post - self.pre

    @property
    def percent(self) -> float:
        return percent(self.pre, self.post)


def pair_delta(pre: Mapping[str, int], post: Mapping[str, int]) -> Delta | None:
    """The maturity change on the questions answered both times (None: no such question)."""
    common = sorted(set(pre) & set(post))
    if not common:
        return None
    return Delta(score(pre, common), score(post, common))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Response:
    """One assignment as results see it (no free text here)."""

    participant_id: UUID
    pair_id: UUID
    kind: SurveyKind
    phase: Phase
    status: str  # open | answered | cancelled
    scale: Mapping[str, int] = field(default_factory=dict)
    actions_started: int = 0
    actions_planned: int = 0

    @property
    def answered(self) -> bool:
        return self.status == "answered"


def _figure(values: Sequence[float], respondents: int, k: int, digits: int = 2) -> dict[str, Any]:
    shown = respondents >= k and bool(values)
    return {
        "respondents": respondents,
        "value": round(fmean(values), digits) if shown else None,
        "withheld": not shown,
    }


def _rate(rows: Sequence[Response]) -> dict[str, Any]:
    counted = [r for r in rows if r.status != "cancelled"]
    answered = sum(1 for r in counted if r.answered)
    return {
        "assigned": len(counted),
        "answered": answered,
        "rate": round(answered / len(counted), 4) if counted else None,
    }


def _scores(rows: Sequence[Response]) -> tuple[list[float], int]:
    """Scores of the answered rows and how many distinct people gave them."""
    answered = [r for r in rows if r.answered and r.scale]
    return [score(r.scale) for r in answered], len({r.participant_id for r in answered})  # type: ignore[misc]


def maturity(rows: Sequence[Response], k: int) -> dict[str, Any]:
    pre = {r.pair_id: r for r in rows if r.phase is Phase.PRE and r.answered}
    post = {r.pair_id: r for r in rows if r.phase is Phase.POST and r.answered}
    deltas = [d for p in pre.keys() & post.keys() if (d := pair_delta(pre[p].scale, post[p].scale)) is not None]
    pre_scores, pre_n = _scores(list(pre.values()))
    post_scores, post_n = _scores(list(post.values()))
    shown = len(deltas) >= k and bool(deltas)
    mean_pre = fmean(d.pre for d in deltas) if deltas else 0.0
    mean_post = fmean(d.post for d in deltas) if deltas else 0.0
    change_of_means = round(percent(mean_pre, mean_post), 1) if shown else None
    return {
        "pre": _figure(pre_scores, pre_n, k),
        "post": _figure(post_scores, post_n, k),
        "delta": {
            "respondents": len(deltas),
            "pre": round(mean_pre, 2) if shown else None,
            "post": round(mean_post, 2) if shown else None,
            "change_of_means_percent": change_of_means,
            "delta_percent": change_of_means,  # deprecated name of change_of_means_percent
            "withheld": not shown,
        },
    }


def summarise(rows: Sequence[Response], k: int) -> dict[str, Any]:
    """Every figure of one group (a wave, a country, a region or a programme)."""
    by_kind = {kind: [r for r in rows if r.kind is kind] for kind in SurveyKind}
    maturity_rows = by_kind[SurveyKind.DIGITAL_MATURITY]
    closing = [r for r in by_kind[SurveyKind.CLOSING_SELF_ASSESSMENT] if r.answered]
    actions_n = len({r.participant_id for r in closing})
    actions_shown = actions_n >= k
    return {
        "response_rates": {
            "digital_maturity_pre": _rate([r for r in maturity_rows if r.phase is Phase.PRE]),
            "digital_maturity_post": _rate([r for r in maturity_rows if r.phase is Phase.POST]),
            **{kind.value: _rate(by_kind[kind]) for kind in SurveyKind if kind is not SurveyKind.DIGITAL_MATURITY},
        },
        "maturity": maturity(maturity_rows, k),
        "averages": {
            kind.value: _figure(*_scores(by_kind[kind]), k)
            for kind in SurveyKind
            if kind is not SurveyKind.DIGITAL_MATURITY
        },
        "actions": {
            "respondents": actions_n,
            "started": sum(r.actions_started for r in closing) if actions_shown else None,
            "planned": sum(r.actions_planned for r in closing) if actions_shown else None,
            "withheld": not actions_shown,
        },
    }
