"""Value objects and the programme defaults.

The enums and value types themselves are the event contract
(``libs/events/contexts/enrollment.py``): matching and insights read the same
ones. This module adds what only the enrollment domain knows: defaults, the
qualification rule's evaluation, generation bands, statuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

from libs.events.contexts.enrollment import (
    GenerationBand,
    IntentionOption,
    LearnerProfile,
    MatchingObjective,
    MatchingPolicy,
    MatchingWeights,
    NeedsQuestion,
    ProgrammeMode,
    ProgrammeSettings,
    QualificationRule,
    QualificationScores,
    Role,
    SeniorityRule,
    Theme,
)

CAPACITY_RANGE = range(1, 4)  # a mentor takes 1 to 3 mentees
NEEDS_QUESTIONS_RANGE = range(2, 4)  # a programme asks 2 or 3 needs questions
LEVEL_RANGE = range(1, 6)  # self-rated theme level, teaching ease, interpersonal skills
SCORE_RANGE = range(0, 101)  # case-study score


class WaveStatus(StrEnum):
    OPEN = "open"
    ENROLMENT_CLOSED = "enrolment_closed"
    ENDED = "ended"


class ParticipantStatus(StrEnum):
    ENROLLED = "enrolled"
    WITHDRAWN = "withdrawn"
    ERASED = "erased"  # GDPR: the person is gone; only ids and counts remain


DEFAULT_THEMES = (
    Theme(code="social_networks", label="Social networks"),
    Theme(code="collaborative_tools", label="Collaborative tools"),
    Theme(code="data_ai", label="Data & AI"),
    Theme(code="cybersecurity", label="Cybersecurity"),
    Theme(code="new_business_models", label="New business models"),
    Theme(code="e_commerce", label="E-commerce"),
    Theme(code="personal_branding", label="Personal branding"),
)

DEFAULT_INTENTIONS = (
    IntentionOption(code="support_junior_career", label="Support a junior's career", role=Role.MENTEE),
    IntentionOption(code="find_digital_profiles", label="Find digital profiles for my projects", role=Role.MENTEE),
    IntentionOption(code="understand_digital_uses", label="Understand how younger colleagues work", role=Role.MENTEE),
    IntentionOption(code="understand_businesses", label="Understand the company's businesses", role=Role.MENTOR),
    IntentionOption(code="progress_own_field", label="Progress in my own field", role=Role.MENTOR),
    IntentionOption(code="grow_network", label="Grow my network across the group", role=Role.MENTOR),
)

DEFAULT_NEEDS_QUESTIONS = (
    NeedsQuestion(
        question_id="priorities",
        text="Which digital topics matter most for your role in the next twelve months?",
    ),
    NeedsQuestion(question_id="least_at_ease", text="Where do you feel least at ease today?"),
)


def default_settings(mode: ProgrammeMode) -> ProgrammeSettings:
    """What a new programme starts with; every part can be changed."""
    return ProgrammeSettings(
        themes=list(DEFAULT_THEMES),
        languages=["en"],
        learner_profiles=list(LearnerProfile),
        intentions=list(DEFAULT_INTENTIONS),
        needs_questions=list(DEFAULT_NEEDS_QUESTIONS),
        qualification_rule=QualificationRule(
            min_case_study_score=60, min_teaching_ease=3, min_interpersonal_skills=3, training_required=True
        ),
        # Mutual programmes allow both directions: no seniority rule.
        seniority_rule=SeniorityRule(enforced=mode is ProgrammeMode.REVERSE, min_level_gap=0),
        matching=MatchingPolicy(
            weights=MatchingWeights(
                theme_fit=30,
                learner_profile=10,
                intentions=15,
                business_function=10,
                language=10,
                time_zone=5,
                cross_entity=10,
                availability=10,
            ),
            language_required=True,
            objective=MatchingObjective.MAX_TOTAL_SCORE,
        ),
    )


def is_qualified(rule: QualificationRule, scores: QualificationScores) -> bool:
    return (
        scores.case_study_score >= rule.min_case_study_score
        and scores.teaching_ease >= rule.min_teaching_ease
        and scores.interpersonal_skills >= rule.min_interpersonal_skills
        and (scores.training_completed or not rule.training_required)
    )


def is_matchable(role: Role, status: ParticipantStatus, qualified: bool, wants_themes: bool) -> bool:
    """What matching may pair: enrolled mentees who want a theme, qualified mentors."""
    if status is not ParticipantStatus.ENROLLED:
        return False
    return qualified if role is Role.MENTOR else wants_themes


def generation_band(birth_year: int) -> GenerationBand:
    """Only the band reaches an event: a birth year is more than matching needs."""
    if birth_year < 1965:
        return GenerationBand.BABY_BOOMER
    if birth_year < 1981:
        return GenerationBand.GEN_X
    if birth_year < 1997:
        return GenerationBand.GEN_Y
    return GenerationBand.GEN_Z


def duplicates(values: Iterable[str]) -> list[str]:
    """The values that occur more than once."""
    return sorted(v for v, n in Counter(values).items() if n > 1)
