"""A person enrolled in one wave of a programme, as mentor or mentee."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any
from uuid import UUID

from libs.events.contexts.enrollment import (
    Actor,
    MentorQualificationAssessed,
    NeedsAnswer,
    NeedsAnswered,
    ParticipantEnrolled,
    ParticipantErased,
    ParticipantProfile,
    ParticipantProfileUpdated,
    ParticipantTransferred,
    ParticipantRelocated,
    ParticipantWithdrew,
    ProfileChangeCause,
    ProgrammeMode,
    QualificationScores,
    Role,
    ThemeLevel,
    WithdrawalCause,
)
from libs.gdpr.personal import ERASED
from libs.domain.aggregate import Aggregate
from services.enrollment.domain.errors import InvalidInput, InvalidState, Issue, Issues
from services.enrollment.domain.programme import MAX_JOB_LEVEL, Programme
from services.enrollment.domain.values import (
    CAPACITY_RANGE,
    LEVEL_RANGE,
    SCORE_RANGE,
    ParticipantStatus,
    duplicates,
    is_matchable,
)
from services.enrollment.domain.wave import Wave

#: Personal fields a profile update may change (the rest of the person is fixed).
PERSONAL_FIELDS = ("display_name", "email", "motivation", "manager_ref")
REQUIRED_PERSONAL_FIELDS = ("display_name", "email", "motivation")
#: The withdrawal reason recorded when the HR directory deactivates a person.
LEFT_ORGANISATION = "left the organisation"
#: Level given to a theme a needs answer adds to the themes wanted.
NEW_WANTED_THEME_LEVEL = 1


@dataclass(frozen=True)
class Enrolment:
    """What a person gives to enrol."""

    role: Role
    profile: ParticipantProfile
    employee_ref: str
    display_name: str
    email: str
    motivation: str
    manager_ref: str | None = None
    country: str | None = None  # if given, the wave's country


ENROLMENT_FIELDS = tuple(f.name for f in fields(Enrolment))


def profile_issues(programme: Programme, role: Role, profile: ParticipantProfile) -> list[Issue]:
    """Every rule a profile breaks in ``programme``, for ``role``."""
    settings = programme.settings
    reverse = programme.mode is ProgrammeMode.REVERSE
    issues = Issues()

    issues.check(bool(profile.languages), "languages", "At least one language.")
    if profile.languages:
        issues.check(
            bool(set(profile.languages) & set(settings.languages)),
            "languages",
            f"Speak at least one of the programme's languages ({', '.join(settings.languages)}).",
        )
    for language in duplicates(profile.languages):
        issues.add("languages", f"{language!r} is listed twice.")
    issues.check(
        profile.learner_profile in settings.learner_profiles,
        "learner_profile",
        f"This programme offers {', '.join(settings.learner_profiles)}.",
    )
    allowed = programme.intention_codes(role)
    for i, code in enumerate(profile.intentions):
        issues.check(
            code in allowed, f"intentions.{i}", f"{code!r} is not an intention this programme offers to {role}s."
        )
    for code in duplicates(profile.intentions):
        issues.add("intentions", f"{code!r} is listed twice.")

    catalogue = programme.theme_codes
    for side in ("themes_wanted", "themes_offered"):
        themes: list[ThemeLevel] = getattr(profile, side)
        for i, item in enumerate(themes):
            issues.check(
                item.theme in catalogue,
                f"{side}.{i}.theme",
                f"{item.theme!r} is not in the programme's theme catalogue.",
            )
            issues.check(item.level in LEVEL_RANGE, f"{side}.{i}.level", "Between 1 and 5.")
        for code in duplicates(t.theme for t in themes):
            issues.add(side, f"{code!r} is listed twice.")

    if role is Role.MENTOR:
        issues.check(bool(profile.themes_offered), "themes_offered", "A mentor offers at least one theme.")
        issues.check(
            not (reverse and profile.themes_wanted),
            "themes_wanted",
            "In a reverse programme mentors offer themes; only mentees want them.",
        )
        issues.check(profile.capacity in CAPACITY_RANGE, "capacity", "A mentor takes 1 to 3 mentees.")
    else:
        issues.check(
            not (reverse and profile.themes_offered),
            "themes_offered",
            "In a reverse programme mentees want themes; only mentors offer them.",
        )
        issues.check(profile.capacity is None, "capacity", "Only mentors have a capacity.")

    issues.check(1 <= profile.job_level <= MAX_JOB_LEVEL, "job_level", f"Between 1 and {MAX_JOB_LEVEL}.")
    seniority = settings.seniority_rule
    if reverse and seniority.enforced:
        if role is Role.MENTOR and seniority.mentor_max_job_level is not None:
            issues.check(
                profile.job_level <= seniority.mentor_max_job_level,
                "job_level",
                f"In this reverse programme a mentor's job level is at most {seniority.mentor_max_job_level}.",
            )
        if role is Role.MENTEE and seniority.mentee_min_job_level is not None:
            issues.check(
                profile.job_level >= seniority.mentee_min_job_level,
                "job_level",
                f"In this reverse programme a mentee's job level is at least {seniority.mentee_min_job_level}.",
            )
    issues.check(profile.tenure_years >= 0, "tenure_years", "Zero or more years.")
    issues.check(profile.sessions_per_month >= 1, "sessions_per_month", "At least one session a month.")
    return issues.items


class Participant(Aggregate):
    created_by = ParticipantEnrolled
    kind = "participant"

    programme_id: UUID
    wave_id: UUID
    person: Enrolment  # who they are now: role, profile, personal fields, country
    status: ParticipantStatus
    #: The country the HR directory gives when it is not the wave's (None: the same, or unknown).
    directory_country: str | None
    needs_answers: list[NeedsAnswer] | None
    qualification: MentorQualificationAssessed | None

    @classmethod
    def enrol(
        cls,
        *,
        participant_id: UUID,
        programme: Programme,
        wave: Wave,
        enrolment: Enrolment,
        actor: Actor,
        import_id: str | None = None,
    ) -> Participant:
        if wave.programme_id != programme.id:
            raise ValueError("the wave belongs to another programme")
        if not wave.is_open:
            raise InvalidState(f"Wave {wave.id} is {wave.status}: enrolment is closed.")
        profile = enrolment.profile
        if enrolment.role is Role.MENTOR and profile.capacity is None:
            profile = profile.model_copy(update={"capacity": CAPACITY_RANGE.start})
        issues = profile_issues(programme, enrolment.role, profile)
        if enrolment.country is not None and enrolment.country != wave.country:
            issues.append(
                Issue("country", f"This wave is in {wave.country}: enrol the person into a wave of their country.")
            )
        if issues:
            raise InvalidInput(issues)
        person = replace(enrolment, profile=profile, country=wave.country)
        self = cls(programme.organisation)
        self.record(
            ParticipantEnrolled(
                participant_id=participant_id,
                programme_id=programme.id,
                wave_id=wave.id,
                **vars(person),
                import_id=import_id,
                actor=actor,
            )
        )
        return self

    @property
    def country(self) -> str:
        assert self.person.country is not None
        return self.person.country

    @property
    def role(self) -> Role:
        return self.person.role

    @property
    def profile(self) -> ParticipantProfile:
        return self.person.profile

    @property
    def is_qualified(self) -> bool:
        return self.qualification is not None and self.qualification.qualified

    @property
    def matchable(self) -> bool:
        return is_matchable(self.role, self.status, self.is_qualified, bool(self.profile.themes_wanted))

    def _ids(self) -> dict[str, Any]:
        return {
            "participant_id": self.id,
            "programme_id": self.programme_id,
            "wave_id": self.wave_id,
            "country": self.country,
        }

    def _require_active(self, wave: Wave) -> None:
        if self.status is ParticipantStatus.ERASED:
            raise InvalidState(f"Participant {self.id} was erased.")
        if self.status is ParticipantStatus.WITHDRAWN:
            raise InvalidState(f"Participant {self.id} has withdrawn.")
        wave.require_not_ended()

    def update_profile(
        self, programme: Programme, wave: Wave, profile_changes: dict[str, Any], personal: dict[str, Any], actor: Actor
    ) -> None:
        """Change profile fields and personal fields; only the changed fields are re-checked
        (a theme since removed from the catalogue does not block a new time zone)."""
        self._require_active(wave)
        unknown = set(personal) - set(PERSONAL_FIELDS)
        if unknown:
            raise ValueError(f"not personal fields: {sorted(unknown)}")
        profile = ParticipantProfile.model_validate({**self.profile.model_dump(), **profile_changes})
        issues = [i for i in profile_issues(programme, self.role, profile) if i.field.split(".")[0] in profile_changes]
        issues += [
            Issue(name, "May not be removed.")
            for name in REQUIRED_PERSONAL_FIELDS
            if name in personal and not personal[name]
        ]
        if issues:
            raise InvalidInput(issues)
        self._record_profile(profile, personal, actor, ProfileChangeCause.REQUEST)

    def follow_directory(
        self, wave: Wave, profile_changes: dict[str, Any], personal: dict[str, Any], actor: Actor
    ) -> None:
        """The HR directory changed the person: its values are facts about
        them, recorded as they are (the programme's rules, checked when a
        person asks, are not a reason to ignore what HR says); the event's
        cause says where they came from."""
        self._require_active(wave)
        profile = self.profile.model_copy(update=profile_changes)
        self._record_profile(profile, personal, actor, ProfileChangeCause.DIRECTORY)

    def _record_profile(
        self, profile: ParticipantProfile, personal: dict[str, Any], actor: Actor, cause: ProfileChangeCause
    ) -> None:
        """Record what differs from now (nothing: no event)."""
        changed = [
            name for name in ParticipantProfile.model_fields if getattr(profile, name) != getattr(self.profile, name)
        ]
        changed_personal = {name: value for name, value in personal.items() if value != getattr(self.person, name)}
        if not changed and not changed_personal:
            return
        self.record(
            ParticipantProfileUpdated(
                **self._ids(),
                role=self.role,
                profile=profile,
                changed=changed + sorted(changed_personal),
                manager_ref_removed="manager_ref" in changed_personal and changed_personal["manager_ref"] is None,
                cause=cause,
                actor=actor,
                **changed_personal,
            )
        )

    def relocate(self, wave: Wave, directory_country: str, actor: Actor) -> None:
        """The HR directory places the person in another country (or back in
        the wave's): recorded for the committee, nothing moves by itself."""
        self._require_active(wave)
        if directory_country == (self.directory_country or self.country):
            return
        self.record(
            ParticipantRelocated(**self._ids(), role=self.role, directory_country=directory_country, actor=actor)
        )

    def withdraw(
        self, wave: Wave, reason: str, actor: Actor, cause: WithdrawalCause = WithdrawalCause.REQUESTED
    ) -> None:
        self._require_active(wave)
        self.record(ParticipantWithdrew(**self._ids(), role=self.role, reason=reason, cause=cause, actor=actor))

    def leave_organisation(self, wave: Wave, actor: Actor) -> None:
        """The HR directory deactivated the person: they leave the programme."""
        self.withdraw(wave, LEFT_ORGANISATION, actor, WithdrawalCause.LEFT_ORGANISATION)

    def transfer(self, wave: Wave, to: Wave, actor: Actor) -> None:
        """Move to ``to``, another open wave of the same programme (any country)."""
        self._require_active(wave)
        issues = Issues()
        issues.check(to.programme_id == self.programme_id, "wave_id", "A wave of the participant's programme.")
        issues.check(to.id != self.wave_id, "wave_id", "The participant is in this wave already.")
        issues.raise_if_any()
        if not to.is_open:
            raise InvalidState(f"Wave {to.id} is {to.status}: enrolment is closed.")
        self.record(
            ParticipantTransferred(
                participant_id=self.id,
                programme_id=self.programme_id,
                wave_id=to.id,
                country=to.country,
                role=self.role,
                from_wave_id=self.wave_id,
                from_country=self.country,
                actor=actor,
            )
        )

    def erase(self, actor: Actor) -> None:
        """GDPR erasure, whatever the participant's state (the keys are shredded
        by the service layer once this is recorded). Erasing twice records
        nothing more, so a retried erasure can finish shredding."""
        if self.status is ParticipantStatus.ERASED:
            return
        self.record(ParticipantErased(**self._ids(), role=self.role, actor=actor))

    def answer_needs(
        self, programme: Programme, wave: Wave, answers: list[NeedsAnswer], comments: dict[str, str], actor: Actor
    ) -> None:
        """Record the needs questionnaire; its themes join the themes wanted."""
        self._require_active(wave)
        if programme.mode is ProgrammeMode.REVERSE and self.role is Role.MENTOR:
            raise InvalidState("In a reverse programme only mentees answer the needs questionnaire.")
        questions = {q.question_id: q for q in programme.settings.needs_questions}
        catalogue = programme.theme_codes
        issues = Issues()
        for i, answer in enumerate(answers):
            question = questions.get(answer.question_id)
            if question is None:
                issues.add(f"answers.{i}.question_id", f"This programme asks no question {answer.question_id!r}.")
                continue
            options = set(question.theme_options) or catalogue
            for j, code in enumerate(answer.themes):
                issues.check(code in options, f"answers.{i}.themes.{j}", f"{code!r} is not an option of this question.")
        for question_id in duplicates(a.question_id for a in answers):
            issues.add("answers", f"Question {question_id!r} is answered twice.")
        missing = sorted(set(questions) - {a.question_id for a in answers})
        issues.check(not missing, "answers", f"Unanswered question(s): {', '.join(missing)}.")
        for question_id in comments:
            issues.check(question_id in questions, f"comments.{question_id}", "Not a question of this programme.")
        wanted = list(self.profile.themes_wanted)
        known = {t.theme for t in wanted}
        for answer in answers:
            for code in answer.themes:
                if code not in known and code in catalogue:
                    wanted.append(ThemeLevel(theme=code, level=NEW_WANTED_THEME_LEVEL))
                    known.add(code)
        issues.check(bool(wanted), "answers", "Pick at least one theme.")
        issues.raise_if_any()
        self.record(
            NeedsAnswered(**self._ids(), answers=answers, comments=comments, themes_wanted=wanted, actor=actor)
        )

    def assess_qualification(self, programme: Programme, wave: Wave, scores: QualificationScores, actor: Actor) -> None:
        """Record a mentor's assessment; the programme's rule says if it qualifies."""
        self._require_active(wave)
        if self.role is not Role.MENTOR:
            raise InvalidState("Only mentors are qualified.")
        issues = Issues()
        issues.check(scores.case_study_score in SCORE_RANGE, "case_study_score", "Between 0 and 100.")
        issues.check(scores.teaching_ease in LEVEL_RANGE, "teaching_ease", "Between 1 and 5.")
        issues.check(scores.interpersonal_skills in LEVEL_RANGE, "interpersonal_skills", "Between 1 and 5.")
        issues.raise_if_any()
        self.record(
            MentorQualificationAssessed(
                **self._ids(),
                scores=scores,
                rule=programme.settings.qualification_rule,
                qualified=programme.qualifies(scores),
                actor=actor,
            )
        )

    # -- state ------------------------------------------------------------------------

    def _on_ParticipantEnrolled(self, event: ParticipantEnrolled) -> None:
        self.id, self.programme_id, self.wave_id = event.participant_id, event.programme_id, event.wave_id
        self.person = Enrolment(**{name: getattr(event, name) for name in ENROLMENT_FIELDS})
        self.status = ParticipantStatus.ENROLLED
        self.directory_country = None
        self.needs_answers = None
        self.qualification = None

    def _on_ParticipantProfileUpdated(self, event: ParticipantProfileUpdated) -> None:
        changed = {name: getattr(event, name) for name in PERSONAL_FIELDS if getattr(event, name) is not None}
        if event.manager_ref_removed:
            changed["manager_ref"] = None
        self.person = replace(self.person, profile=event.profile, **changed)

    def _on_ParticipantRelocated(self, event: ParticipantRelocated) -> None:
        moved = event.directory_country != self.country
        self.directory_country = event.directory_country if moved else None

    def _on_ParticipantWithdrew(self, event: ParticipantWithdrew) -> None:
        self.status = ParticipantStatus.WITHDRAWN

    def _on_ParticipantTransferred(self, event: ParticipantTransferred) -> None:
        self.wave_id = event.wave_id
        self.person = replace(self.person, country=event.country)

    def _on_ParticipantErased(self, event: ParticipantErased) -> None:
        self.status = ParticipantStatus.ERASED
        self.person = replace(
            self.person,
            **{name: ERASED for name in ("display_name", "email", "motivation", "employee_ref")},
            manager_ref=None,
        )

    def _on_NeedsAnswered(self, event: NeedsAnswered) -> None:
        self.needs_answers = event.answers
        self.person = replace(
            self.person, profile=self.profile.model_copy(update={"themes_wanted": event.themes_wanted})
        )

    def _on_MentorQualificationAssessed(self, event: MentorQualificationAssessed) -> None:
        self.qualification = event
