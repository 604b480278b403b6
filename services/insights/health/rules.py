"""Pair health: the rules, their thresholds, and a pair's verdict.

Pure logic, no I/O. A verdict is evaluated at read time from the pair's
stored facts (``pairs`` + ``pair_activity``), the programme's thresholds and
an injected clock: "no session for 40 days" depends on today, and changing a
threshold must not need a replay.

Statuses, worst first: ``ended`` (completed or dissolved), ``dormant`` (no
session held for ``dormant_after_cadences`` expected intervals), ``at_risk``
(any other reason), ``healthy`` (formed, no reason). Each reason names the
event type it comes from (``fact``) and the moment it became true (``at``),
so lists can show the newest reason first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    HEALTHY = "healthy"
    AT_RISK = "at_risk"
    DORMANT = "dormant"
    ENDED = "ended"


#: Statuses a list of "pairs needing attention" shows by default.
NEEDS_ATTENTION = (Status.AT_RISK, Status.DORMANT)


class HealthRules(BaseModel):
    """A programme's thresholds; every one has a default (documented in
    services/insights/README.md). An HR admin overrides any subset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_session_within_days: int = Field(21, ge=1, le=365, description="A formed pair holds its first session within this.")
    cadence_days: int | None = Field(
        None, ge=1, le=365, description="Expected days between sessions; unset: 30 / the mentee's sessions per month."
    )
    late_after_cadences: float = Field(1.5, gt=0, le=20, description="At risk when no session for this many intervals.")
    dormant_after_cadences: float = Field(3.0, gt=0, le=50, description="Dormant when no session for this many intervals.")
    min_sessions_for_rates: int = Field(3, ge=1, le=100, description="Rates count only from this many sessions on.")
    max_cancellation_rate: float = Field(0.34, ge=0, le=1, description="Cancelled / (held + cancelled + no-shows).")
    max_no_show_rate: float = Field(0.25, ge=0, le=1, description="No-shows / (held + cancelled + no-shows).")
    low_mood: int = Field(2, ge=1, le=5, description="At risk when the latest check-in mood is at most this (1-5).")
    low_feedback: float = Field(2.5, ge=1, le=5, description="At risk when the latest feedback score is at most this (1-5).")
    feedback_drop: float = Field(1.0, gt=0, le=4, description="At risk when the latest feedback falls this much below the earlier mean.")
    overdue_survey_days: int = Field(7, ge=0, le=365, description="A survey this many days past due is overdue.")
    budget_months_back: int = Field(1, ge=0, le=12, description="A mentor over budget this month or this many months before.")


@dataclass(frozen=True)
class Reason:
    code: str
    fact: str  # the event type the reason comes from
    at: datetime  # when it became true
    detail: str
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "fact": self.fact, "at": self.at, "detail": self.detail, "values": self.values}


@dataclass(frozen=True)
class MemberMood:
    """One member's latest check-in."""

    member: str  # mentee, mentor (or hr)
    mood: int
    at: datetime


@dataclass(frozen=True)
class PairFacts:
    """What the read model knows about one pair (one row of pairs + pair_activity)."""

    status: str  # formed, completed, dissolved
    formed_at: datetime | None
    ended_at: datetime | None = None
    dissolution_reason: str | None = None
    sessions_per_month: int | None = None  # the mentee's wish: the expected cadence
    sessions_held: int = 0
    sessions_cancelled: int = 0
    no_shows: int = 0
    first_held_at: datetime | None = None
    last_held_at: datetime | None = None
    moods: tuple[MemberMood, ...] = ()  # each member's latest check-in
    feedback_scores: tuple[float, ...] = ()
    last_feedback_at: datetime | None = None
    open_survey_due: tuple[datetime, ...] = ()
    budget_exceeded_month: date | None = None
    budget_exceeded_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    status: Status
    reasons: tuple[Reason, ...]

    @property
    def newest_reason_at(self) -> datetime | None:
        return max((r.at for r in self.reasons), default=None)


def cadence_days(rules: HealthRules, facts: PairFacts) -> float:
    if rules.cadence_days is not None:
        return float(rules.cadence_days)
    return 30.0 / max(facts.sessions_per_month or 1, 1)


def evaluate(facts: PairFacts, rules: HealthRules, now: datetime) -> Verdict:
    """The pair's status and every reason behind it, newest first."""
    if facts.status in ("completed", "dissolved"):
        return Verdict(Status.ENDED, (_ended(facts),))
    reasons = [
        r
        for check in (_first_session, _silence, _cancellations, _no_shows, _mood, _feedback, _overdue, _budget)
        for r in check(facts, rules, now)
    ]
    reasons.sort(key=lambda r: (r.at, r.code), reverse=True)
    if any(r.code == "dormant" for r in reasons):
        status = Status.DORMANT
    elif reasons:
        status = Status.AT_RISK
    else:
        status = Status.HEALTHY
    return Verdict(status, tuple(reasons))


def _ended(facts: PairFacts) -> Reason:
    at = facts.ended_at or facts.formed_at
    assert at is not None
    if facts.status == "completed":
        return Reason("completed", "PairCompleted", at, "The pair completed its mentoring.")
    return Reason(
        "dissolved", "PairDissolved", at, f"The pair was dissolved ({facts.dissolution_reason}).",
        {"reason": facts.dissolution_reason},
    )


def _first_session(facts: PairFacts, rules: HealthRules, now: datetime):
    if facts.formed_at is None or facts.first_held_at is not None:
        return
    deadline = facts.formed_at + timedelta(days=rules.first_session_within_days)
    if now > deadline:
        yield Reason(
            "no_first_session", "PairFormed", deadline,
            f"No session held within {rules.first_session_within_days} days of forming.",
            {"formed_at": facts.formed_at, "threshold_days": rules.first_session_within_days},
        )


def _silence(facts: PairFacts, rules: HealthRules, now: datetime):
    """No session for too long, against the expected cadence (after the first one)."""
    if facts.last_held_at is None:
        return
    cadence = cadence_days(rules, facts)
    for code, factor in (("dormant", rules.dormant_after_cadences), ("overdue_session", rules.late_after_cadences)):
        since = facts.last_held_at + timedelta(days=cadence * factor)
        if now > since:
            days = (now - facts.last_held_at).days
            yield Reason(
                code, "SessionHeld", since,
                f"{days} days since the last session held; expected every {cadence:g} days.",
                {"last_held_at": facts.last_held_at, "days": days, "cadence_days": cadence, "threshold_cadences": factor},
            )
            return  # dormant implies overdue: name the worse one only


def _rate_reason(code: str, fact: str, count: int, facts: PairFacts, rules: HealthRules, limit: float, label: str):
    total = facts.sessions_held + facts.sessions_cancelled + facts.no_shows
    if total < rules.min_sessions_for_rates or total == 0:
        return None
    rate = count / total
    if rate <= limit:
        return None
    at = facts.last_held_at or facts.formed_at
    assert at is not None
    return Reason(
        code, fact, at, f"{count} of {total} sessions {label} ({rate:.0%}, threshold {limit:.0%}).",
        {"count": count, "sessions": total, "rate": round(rate, 4), "threshold": limit},
    )


def _cancellations(facts: PairFacts, rules: HealthRules, now: datetime):
    reason = _rate_reason(
        "cancellations", "SessionCancelled", facts.sessions_cancelled, facts, rules, rules.max_cancellation_rate, "cancelled"
    )
    if reason:
        yield reason


def _no_shows(facts: PairFacts, rules: HealthRules, now: datetime):
    reason = _rate_reason("no_shows", "SessionNoShow", facts.no_shows, facts, rules, rules.max_no_show_rate, "missed")
    if reason:
        yield reason


def _mood(facts: PairFacts, rules: HealthRules, now: datetime):
    """Each member's latest check-in counts: one member's later, happier
    check-in must not hide the other's low mood."""
    for latest in facts.moods:
        if latest.mood <= rules.low_mood:
            yield Reason(
                "low_mood", "CheckInRecorded", latest.at,
                f"The {latest.member}'s latest check-in mood is {latest.mood} of 5.",
                {"member": latest.member, "mood": latest.mood, "threshold": rules.low_mood},
            )


def _feedback(facts: PairFacts, rules: HealthRules, now: datetime):
    scores = facts.feedback_scores
    if not scores or facts.last_feedback_at is None:
        return
    latest = scores[-1]
    if latest <= rules.low_feedback:
        yield Reason(
            "low_feedback", "SurveyAnswered", facts.last_feedback_at,
            f"The latest session feedback scores {latest:.1f} of 5.", {"score": latest, "threshold": rules.low_feedback},
        )
    elif len(scores) >= 2:
        earlier = sum(scores[:-1]) / (len(scores) - 1)
        if earlier - latest >= rules.feedback_drop:
            yield Reason(
                "falling_feedback", "SurveyAnswered", facts.last_feedback_at,
                f"Session feedback fell from {earlier:.1f} to {latest:.1f}.",
                {"earlier_mean": round(earlier, 3), "latest": latest, "threshold": rules.feedback_drop},
            )


def _overdue(facts: PairFacts, rules: HealthRules, now: datetime):
    grace = timedelta(days=rules.overdue_survey_days)
    overdue = sorted(due for due in facts.open_survey_due if now > due + grace)
    if overdue:
        yield Reason(
            "overdue_surveys", "SurveyAssigned", overdue[-1] + grace,
            f"{len(overdue)} survey(s) unanswered more than {rules.overdue_survey_days} days past due.",
            {"count": len(overdue), "oldest_due_at": overdue[0]},
        )


def _budget(facts: PairFacts, rules: HealthRules, now: datetime):
    month, at = facts.budget_exceeded_month, facts.budget_exceeded_at
    if month is None or at is None:
        return
    first_counted = _months_before(date(now.year, now.month, 1), rules.budget_months_back)
    if month >= first_counted:
        yield Reason(
            "mentor_over_budget", "MentorBudgetExceeded", at,
            f"The mentor went over the programme's time budget in {month:%Y-%m}.", {"month": month},
        )


def _months_before(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)
