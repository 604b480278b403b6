"""The API's request and response bodies.

Requests forbid unknown fields (an attempt to change, say, a participant's
country or wave is a 422 naming that field) and check formats: lengths,
ranges, ISO codes, time zones. The domain then checks the rules.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from libs.api.dates import Day, TimeZone
from libs.api.pagination import PageQuery
from libs.api.patch import partial_model, sent
from libs.api.text import NO_SPACE, stripped
from libs.events.contexts.enrollment import (
    Actor,
    GenerationBand,
    LearnerProfile,
    MatchingObjective,
    NeedsAnswer,
    ParticipantProfile,
    ProgrammeMode,
    ProgrammeSettings,
    QualificationRule,
    QualificationScores,
    Role,
    WithdrawalCause,
)
from services.enrollment.domain.participant import ENROLMENT_FIELDS, PERSONAL_FIELDS, Enrolment
from services.enrollment.domain.values import ParticipantStatus, WaveStatus, generation_band

# --------------------------------------------------------------------------- formats


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _any_case(pattern: str) -> Field:  # type: ignore[valid-type]
    """What the document says of a value read in any case (the validator
    lowers or uppers it first): the pattern with both cases."""
    return Field(json_schema_extra={"pattern": pattern})


Code = Annotated[
    str,
    BeforeValidator(_lower),
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$"),
    _any_case(r"^[A-Za-z][A-Za-z0-9_]{1,39}$"),
]
Country = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z]{2}$"), _any_case(r"^[A-Za-z]{2}$")]
Language = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=r"^[a-z]{2}$"), _any_case(r"^[A-Za-z]{2}$")]
Label = stripped(120)
Name = stripped(200)
Text = stripped(4000)
Ref = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"),
]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
                 # The same pattern for every regex engine (ECMAScript's \s leaves U+0085 out).
                 Field(json_schema_extra={"pattern": rf"^[^@{NO_SPACE}]+@[^@{NO_SPACE}]+\.[^@{NO_SPACE}]+$"})]
Level = Annotated[int, Field(ge=1, le=5)]
Weight = Annotated[float, Field(ge=0, le=100)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- programmes


class ThemeIn(Input):
    code: Code
    label: Label


class IntentionIn(Input):
    code: Code
    label: Label
    role: Role


class NeedsQuestionIn(Input):
    question_id: Code
    text: stripped(500)  # type: ignore[valid-type]
    theme_options: list[Code] = Field(default_factory=list, max_length=100, description="Empty: the whole catalogue.")


class QualificationRuleIn(Input):
    min_case_study_score: int = Field(ge=0, le=100)
    min_teaching_ease: Level
    min_interpersonal_skills: Level
    training_required: bool = True


class SeniorityRuleIn(Input):
    enforced: bool
    min_level_gap: int = Field(0, ge=0, le=19, description="Per pair: mentee level - mentor level >= this.")
    mentor_max_job_level: int | None = Field(None, ge=1, le=20)
    mentee_min_job_level: int | None = Field(None, ge=1, le=20)


class MatchingWeightsIn(Input):
    theme_fit: Weight
    learner_profile: Weight
    intentions: Weight
    business_function: Weight
    language: Weight
    time_zone: Weight
    cross_entity: Weight
    availability: Weight


class MatchingPolicyIn(Input):
    weights: MatchingWeightsIn
    language_required: bool = True
    objective: MatchingObjective = MatchingObjective.MAX_TOTAL_SCORE


class SettingsIn(Input):
    """A programme's settings; each one given replaces the current (or default) one."""

    themes: list[ThemeIn] = Field(min_length=1, max_length=100)
    languages: list[Language] = Field(min_length=1, max_length=30)
    learner_profiles: list[LearnerProfile] = Field(min_length=1, max_length=3)
    intentions: list[IntentionIn] = Field(max_length=50)
    needs_questions: list[NeedsQuestionIn] = Field(min_length=2, max_length=3)
    qualification_rule: QualificationRuleIn
    seniority_rule: SeniorityRuleIn
    matching: MatchingPolicyIn
    notes_retention_days: int = Field(
        365, ge=1, le=3650, description="GDPR: days an ended pair's free-text notes are kept, then erased."
    )


SettingsPatch = partial_model(SettingsIn, "SettingsPatch", doc="Settings to change; the others stay as they are.")


class ProgrammeIn(Input):
    name: Name
    mode: ProgrammeMode = ProgrammeMode.REVERSE
    settings: SettingsPatch = Field(  # type: ignore[valid-type]
        default_factory=SettingsPatch, description="Settings other than the defaults (themes, languages...)."
    )


class ProgrammeOut(BaseModel):
    programme_id: UUID
    name: str
    mode: ProgrammeMode
    settings: ProgrammeSettings
    version: int
    created_at: datetime
    created_by: Actor
    updated_at: datetime
    updated_by: Actor


# --------------------------------------------------------------------------- waves


class WaveIn(Input):
    name: Name
    region: Label
    country: Country
    committee: Label = Field(description="The regional HR committee that owns the wave.")
    starts_on: Day
    ends_on: Day
    target_pairs: int = Field(ge=1, le=100_000)
    enrolment_closes_on: Day | None = Field(
        None,
        description="Enrolment closes by itself when this day begins (UTC, platform clock), on or before "
        "`ends_on`. Unset: when the committee closes it. Either way the wave ends by itself once `ends_on` is over.",
    )


class WaveOut(BaseModel):
    wave_id: UUID
    programme_id: UUID
    name: str
    region: str
    country: str
    committee: str
    starts_on: date
    ends_on: date
    target_pairs: int
    enrolment_closes_on: date | None = None
    status: WaveStatus
    version: int
    opened_at: datetime
    opened_by: Actor
    updated_at: datetime
    updated_by: Actor


class MenteeFunnel(BaseModel):
    enrolled: int
    withdrawn: int
    active: int
    needs_answered: int
    matchable: int


class MentorFunnel(BaseModel):
    enrolled: int
    withdrawn: int
    active: int
    assessed: int
    qualified: int
    matchable: int
    mentee_slots: int = Field(description="Sum of the capacities of matchable mentors.")


class FunnelOut(BaseModel):
    wave_id: UUID
    status: WaveStatus
    target_pairs: int
    mentees: MenteeFunnel
    mentors: MentorFunnel
    possible_pairs: int = Field(description="min(matchable mentees, mentee slots): an upper bound for matching.")


# --------------------------------------------------------------------------- participants


class ThemeLevelIn(Input):
    theme: Code
    level: Level


class ProfileIn(Input):
    """The profile fields of a participant, and the personal ones that may change."""

    display_name: Name
    email: Email
    motivation: Text
    manager_ref: Ref | None = Field(None, description="The manager's employee reference (excludes reporting lines).")
    entity: Label
    business_function: Label
    job_level: int = Field(ge=1, le=20, description="1 = entry level; higher is more senior.")
    tenure_years: int = Field(ge=0, le=60)
    birth_year: int | None = Field(
        None, ge=1930, le=2015, description="Only its generation band is kept, never the year."
    )
    generation_band: GenerationBand | None = None
    languages: list[Language] = Field(min_length=1, max_length=10)
    time_zone: TimeZone
    learner_profile: LearnerProfile
    intentions: list[Code] = Field(default_factory=list, max_length=10)
    themes_wanted: list[ThemeLevelIn] = Field(default_factory=list, max_length=20)
    themes_offered: list[ThemeLevelIn] = Field(default_factory=list, max_length=20)
    sessions_per_month: int = Field(1, ge=1, le=8)
    capacity: int | None = Field(None, ge=1, le=3, description="Mentors only: how many mentees (default 1).")

    @field_validator("generation_band")
    @classmethod
    def _band_matches_birth_year(cls, band: GenerationBand | None, info: Any) -> GenerationBand | None:
        year = info.data.get("birth_year")
        if band is not None and year is not None and generation_band(year) != band:
            # A rule between two fields, which no schema states: an error of type rule.
            raise PydanticCustomError("rule", "Born in {year} is {band}; give one of the two.",
                                      {"year": year, "band": str(generation_band(year))})
        return band

    def profile_values(self, fields: set[str]) -> dict[str, Any]:
        """The matchable-profile values among ``fields`` (a birth year becomes its band)."""
        values = self.model_dump(include=fields & set(ParticipantProfile.model_fields))
        if "birth_year" in fields and self.birth_year is not None:
            values["generation_band"] = generation_band(self.birth_year)
        return values


class EnrolmentIn(ProfileIn):
    role: Role
    employee_ref: Ref = Field(description="The person's HR reference: one enrolment per person per programme.")
    country: Country | None = Field(None, description="Defaults to the wave's country; must be it if given.")

    def to_enrolment(self) -> Enrolment:
        profile = ParticipantProfile.model_validate(self.profile_values(set(type(self).model_fields)))
        return Enrolment(profile=profile, **self.model_dump(include=set(ENROLMENT_FIELDS) - {"profile"}))


class DirectoryEnrolmentIn(EnrolmentIn):
    """An enrolment of a person provisioned in the organisation's HR directory
    (SCIM): ``employee_ref`` is their ``employeeNumber``; what this body leaves
    out of name, e-mail, manager, entity, business function, job level,
    languages and time zone comes from the directory, and their country is
    the directory's."""

    employee_ref: Ref = Field(description="The person's employeeNumber in the organisation's directory.")
    display_name: Name | None = None  # type: ignore[assignment]
    email: Email | None = None  # type: ignore[assignment]
    entity: Label | None = None  # type: ignore[assignment]
    business_function: Label | None = None  # type: ignore[assignment]
    job_level: int | None = Field(None, ge=1, le=20)  # type: ignore[assignment]
    languages: list[Language] | None = Field(None, min_length=1, max_length=10)  # type: ignore[assignment]
    time_zone: TimeZone | None = None  # type: ignore[assignment]
    country: None = Field(None, description="The directory's: not given here.")  # type: ignore[assignment]

    def given(self) -> dict[str, Any]:
        """What the body says (a birth year as its band, defaults included), without the fields it left out."""
        fields = {name for name in type(self).model_fields if getattr(self, name) is not None}
        values = self.model_dump(include=fields - {"birth_year", "country"})
        values.update(self.profile_values(fields & {"birth_year"}))
        return values


_ProfilePatch = partial_model(
    ProfileIn, "ProfilePatch", doc="Profile fields to change; role, country, wave and employee reference are fixed."
)


class ProfilePatch(_ProfilePatch):  # type: ignore[valid-type,misc]
    def changes(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(profile changes, personal changes) as sent."""
        return self.profile_values(self.model_fields_set), sent(self, only=set(PERSONAL_FIELDS))


class WithdrawIn(Input):
    reason: Text


class NeedsAnswerIn(Input):
    question_id: Code
    themes: list[Code] = Field(max_length=10)


class NeedsIn(Input):
    answers: list[NeedsAnswerIn] = Field(min_length=1, max_length=3)
    comments: dict[Code, Text] = Field(
        default_factory=dict,
        max_length=3,
        description="question_id -> free text.",
        # The keys are codes (case-insensitive): say so in OpenAPI, which drops a validated key's pattern.
        json_schema_extra={"propertyNames": {"pattern": r"^[A-Za-z][A-Za-z0-9_]{1,39}$"}},
    )

    def to_answers(self) -> list[NeedsAnswer]:
        return [NeedsAnswer.model_validate(a.model_dump()) for a in self.answers]


class QualificationIn(Input):
    case_study_score: int = Field(ge=0, le=100)
    teaching_ease: Level
    interpersonal_skills: Level
    training_completed: bool

    def to_scores(self) -> QualificationScores:
        return QualificationScores.model_validate(self.model_dump())


class NeedsOut(BaseModel):
    answers: list[NeedsAnswer]
    comments: dict[str, str]
    answered_at: datetime
    answered_by: Actor


class QualificationOut(BaseModel):
    scores: QualificationScores
    rule: QualificationRule
    qualified: bool
    assessed_at: datetime
    assessed_by: Actor


class WithdrawalOut(BaseModel):
    reason: str
    cause: WithdrawalCause = Field(
        WithdrawalCause.REQUESTED, description="left_organisation: the HR directory deactivated the person."
    )
    withdrawn_at: datetime
    withdrawn_by: Actor


class ErasureOut(BaseModel):
    erased_at: datetime
    erased_by: Actor
    #: "completed" once every service rewrote its files without the person
    #: (libs/gdpr/compaction.py); until then their data may linger on disk.
    status: Literal["pending", "completed"] = "pending"
    completed_at: datetime | None = None


class TransferIn(Input):
    wave_id: UUID = Field(description="The open wave of the same programme the participant moves to (any country "
                          "the caller holds).")


class TransferManyIn(Input):
    to_wave_id: UUID = Field(description="The open wave of the same programme they move to.")
    participant_ids: list[UUID] = Field(min_length=1, max_length=10_000, description="Participants of this wave.")


class TransferManyOut(BaseModel):
    from_wave_id: UUID
    to_wave_id: UUID
    transferred: list[UUID]


class TransferOut(BaseModel):
    from_wave_id: UUID
    from_country: str
    to_wave_id: UUID
    to_country: str
    transferred_at: datetime
    approved_by: Actor


class ParticipantOut(BaseModel):
    participant_id: UUID
    programme_id: UUID
    wave_id: UUID
    role: Role
    country: str
    status: ParticipantStatus
    matchable: bool
    profile: ParticipantProfile
    employee_ref: str
    manager_ref: str | None
    display_name: str
    email: str
    motivation: str
    needs: NeedsOut | None
    qualification: QualificationOut | None
    withdrawal: WithdrawalOut | None
    erasure: ErasureOut | None = None
    transfers: list[TransferOut] = Field(default_factory=list, description="Moves to another wave, oldest first.")
    directory_country: str | None = Field(
        None,
        description="Set when the HR directory places the person in another country than the wave's"
        " (ParticipantRelocated): the committee decides, nothing moves by itself.",
    )
    import_id: str | None
    version: int
    enrolled_at: datetime
    enrolled_by: Actor
    updated_at: datetime
    updated_by: Actor


# --------------------------------------------------------------------------- import


class RowErrorOut(BaseModel):
    line: int = Field(description="CSV: the line in the file (header = 1). JSON: the row's position, from 1.")
    field: str
    message: str


class ImportReportOut(BaseModel):
    file_sha256: str
    valid_only: bool
    rows: int
    imported: int
    already_imported: int = Field(description="Rows this same file had imported before (re-upload).")
    errors: list[RowErrorOut]


#: Columns of an import file: an enrolment's fields.
IMPORT_COLUMNS = frozenset(EnrolmentIn.model_fields)
IMPORT_LIST_COLUMNS = frozenset({"languages", "intentions"})
IMPORT_LEVEL_COLUMNS = frozenset({"themes_wanted", "themes_offered"})


# --------------------------------------------------------------------------- query parameters


class ParticipantQuery(PageQuery):
    """The participants list's query parameters: its filters and its page.
    One model, so that pydantic checks them in one call; FastAPI documents
    and names each (a bad one is a 422 naming ``query.<name>``)."""

    programme_id: UUID | None = None
    wave_id: UUID | None = None
    country: str | None = Field(None, pattern=r"^[A-Za-z]{2}$")
    role: Role | None = None
    status: ParticipantStatus | None = None
    theme: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{1,39}$", description="Wanted or offered.")
    matchable: bool | None = None
