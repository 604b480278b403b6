"""A mentoring programme of one organisation: its mode and its settings."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from libs.events.contexts.enrollment import (
    Actor,
    ProgrammeCreated,
    ProgrammeMode,
    ProgrammeSettings,
    ProgrammeSettingsChanged,
    QualificationScores,
    Role,
)
from libs.domain.aggregate import Aggregate
from services.enrollment.domain.errors import Issues
from services.enrollment.domain.values import (
    LEVEL_RANGE,
    NEEDS_QUESTIONS_RANGE,
    SCORE_RANGE,
    duplicates,
    is_qualified,
)

MAX_JOB_LEVEL = 20


def check_settings(mode: ProgrammeMode, settings: ProgrammeSettings) -> None:
    """Every rule a programme's settings keep; field paths are relative to the settings."""
    issues = Issues()
    codes = [t.code for t in settings.themes]
    issues.check(bool(codes), "themes", "The catalogue needs at least one theme.")
    for code in duplicates(codes):
        issues.add("themes", f"Theme {code!r} is listed twice.")
    issues.check(bool(settings.languages), "languages", "A programme runs in at least one language.")
    for language in duplicates(settings.languages):
        issues.add("languages", f"Language {language!r} is listed twice.")
    issues.check(bool(settings.learner_profiles), "learner_profiles", "Offer at least one learner profile.")
    for role in Role:
        for code in duplicates(i.code for i in settings.intentions if i.role is role):
            issues.add("intentions", f"Intention {code!r} is listed twice for {role}s.")

    questions = settings.needs_questions
    issues.check(
        len(questions) in NEEDS_QUESTIONS_RANGE,
        "needs_questions",
        f"The needs questionnaire has {NEEDS_QUESTIONS_RANGE.start} or {NEEDS_QUESTIONS_RANGE.stop - 1} questions.",
    )
    for question_id in duplicates(q.question_id for q in questions):
        issues.add("needs_questions", f"Question id {question_id!r} is used twice.")
    catalogue = set(codes)
    for i, question in enumerate(questions):
        for code in question.theme_options:
            issues.check(
                code in catalogue, f"needs_questions.{i}.theme_options", f"{code!r} is not in the theme catalogue."
            )

    rule = settings.qualification_rule
    issues.check(
        rule.min_case_study_score in SCORE_RANGE, "qualification_rule.min_case_study_score", "Between 0 and 100."
    )
    issues.check(rule.min_teaching_ease in LEVEL_RANGE, "qualification_rule.min_teaching_ease", "Between 1 and 5.")
    issues.check(
        rule.min_interpersonal_skills in LEVEL_RANGE, "qualification_rule.min_interpersonal_skills", "Between 1 and 5."
    )

    seniority = settings.seniority_rule
    issues.check(
        not (seniority.enforced and mode is ProgrammeMode.MUTUAL),
        "seniority_rule.enforced",
        "Mutual programmes allow both directions; the seniority rule is for reverse programmes.",
    )
    issues.check(0 <= seniority.min_level_gap < MAX_JOB_LEVEL, "seniority_rule.min_level_gap", "Between 0 and 19.")
    for name in ("mentor_max_job_level", "mentee_min_job_level"):
        level = getattr(seniority, name)
        issues.check(level is None or 1 <= level <= MAX_JOB_LEVEL, f"seniority_rule.{name}", "Between 1 and 20.")

    weights = settings.matching.weights.model_dump()
    for name, weight in weights.items():
        issues.check(0 <= weight <= 100, f"matching.weights.{name}", "Between 0 and 100.")
    issues.check(any(w > 0 for w in weights.values()), "matching.weights", "At least one weight must be positive.")
    issues.raise_if_any()


class Programme(Aggregate):
    created_by = ProgrammeCreated
    kind = "programme"

    name: str
    mode: ProgrammeMode
    settings: ProgrammeSettings

    @classmethod
    def create(
        cls,
        *,
        programme_id: UUID,
        organisation: str,
        name: str,
        mode: ProgrammeMode,
        settings: ProgrammeSettings,
        actor: Actor,
    ) -> Programme:
        check_settings(mode, settings)
        self = cls(organisation)
        self.record(
            ProgrammeCreated(programme_id=programme_id, programme_name=name, mode=mode, settings=settings, actor=actor)
        )
        return self

    def change_settings(self, changes: dict[str, Any], actor: Actor) -> None:
        """Replace the named top-level settings; no event when nothing differs."""
        settings = ProgrammeSettings.model_validate({**self.settings.model_dump(), **changes})
        check_settings(self.mode, settings)
        changed = [
            name for name in ProgrammeSettings.model_fields if getattr(settings, name) != getattr(self.settings, name)
        ]
        if changed:
            self.record(
                ProgrammeSettingsChanged(programme_id=self.id, settings=settings, changed=changed, actor=actor)
            )

    # -- what other aggregates ask ------------------------------------------------

    @property
    def theme_codes(self) -> set[str]:
        return {t.code for t in self.settings.themes}

    def intention_codes(self, role: Role) -> set[str]:
        return {i.code for i in self.settings.intentions if i.role is role}

    def qualifies(self, scores: QualificationScores) -> bool:
        return is_qualified(self.settings.qualification_rule, scores)

    # -- state ------------------------------------------------------------------------

    def _on_ProgrammeCreated(self, event: ProgrammeCreated) -> None:
        self.id, self.name, self.mode, self.settings = (
            event.programme_id,
            event.programme_name,
            event.mode,
            event.settings,
        )

    def _on_ProgrammeSettingsChanged(self, event: ProgrammeSettingsChanged) -> None:
        self.settings = event.settings
