"""Events of the enrollment context: programmes, waves, participants, needs and
mentor qualification. Emitted by ``services/enrollment`` on topic
``binome.enrollment.events``; consumed by matching (the candidate pool) and
insights.

Conventions every event here keeps:

* ``data`` carries the ids a consumer needs to file the fact without reading
  another event (programme, wave, participant), and ``actor``: who made the
  change ("every change records who made it").
* The envelope's ``subject`` is the aggregate id (programme, wave or
  participant id), ``tenant`` the organisation, ``country`` the wave's (and so
  the participant's) country; programme events have no country.
* Personal data is minimal and listed in ``personal_fields`` (always
  top-level fields), so that crypto-shredding can encrypt exactly those
  values with the participant's key. The matchable profile
  (``ParticipantProfile``) holds no direct identifier: a birth year is reduced
  to a generation band before it reaches an event.
* No field is called ``name``: on an event class that is the event's own
  name (``DomainEvent.name``).
* Value types hold structure, not policy: ranges and catalogue membership are
  checked by the service before an event exists, so that a rule tightened
  later never makes a stored fact unreadable.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from libs.events.registry import DomainEvent, event

CONTEXT = "enrollment"


# --------------------------------------------------------------------------- enums


class ProgrammeMode(StrEnum):
    """``reverse``: juniors mentor seniors; ``mutual``: two-way mentoring."""

    REVERSE = "reverse"
    MUTUAL = "mutual"


class Role(StrEnum):
    MENTOR = "mentor"
    MENTEE = "mentee"


class LearnerProfile(StrEnum):
    """How a person learns: by experimenting, by theory, or both."""

    EXPERIENTIAL = "experiential"
    THEORETICAL = "theoretical"
    MIXED = "mixed"


class GenerationBand(StrEnum):
    BABY_BOOMER = "baby_boomer"  # born before 1965
    GEN_X = "gen_x"  # 1965-1980
    GEN_Y = "gen_y"  # 1981-1996
    GEN_Z = "gen_z"  # 1997 and later


class WithdrawalCause(StrEnum):
    """Why a participant left: they (or HR) asked, or the HR directory says
    they left the organisation (``binome.directory.PersonDeactivated``)."""

    REQUESTED = "requested"
    LEFT_ORGANISATION = "left_organisation"


class ProfileChangeCause(StrEnum):
    """Where a profile change came from: a request to the API, or the
    organisation's HR directory (SCIM provisioning)."""

    REQUEST = "request"
    DIRECTORY = "directory"


class MatchingObjective(StrEnum):
    """What a matching run maximises (issue 4)."""

    MAX_TOTAL_SCORE = "max_total_score"
    MAX_MATCHED_THEN_SCORE = "max_matched_then_score"


# --------------------------------------------------------------------------- values


class Value(BaseModel):
    """A nested value of an event: immutable, no unknown members."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Value):
    """Who made a change: the token's subject and, for machines, the OAuth client."""

    subject: str
    client_id: str | None = None


class Theme(Value):
    """A digital theme of the programme's catalogue."""

    code: str
    label: str


class IntentionOption(Value):
    """An intention the enrolment form offers to one role."""

    code: str
    label: str
    role: Role


class NeedsQuestion(Value):
    """A question of the needs questionnaire; its answers pick themes among
    ``theme_options`` (empty: the whole catalogue)."""

    question_id: str
    text: str
    theme_options: list[str] = []


class QualificationRule(Value):
    """What "qualified" means for a mentor of this programme."""

    min_case_study_score: int  # 0-100
    min_teaching_ease: int  # 1-5
    min_interpersonal_skills: int  # 1-5
    training_required: bool


class SeniorityRule(Value):
    """Reverse programmes: a mentor is not senior to the mentee by job level.

    Per pair (enforced by matching): ``mentee.job_level - mentor.job_level >=
    min_level_gap``. Per person (enforced at enrolment): a mentor's level is
    at most ``mentor_max_job_level`` and a mentee's at least
    ``mentee_min_job_level`` when set. Never enforced in mutual programmes.
    """

    enforced: bool
    min_level_gap: int
    mentor_max_job_level: int | None = None
    mentee_min_job_level: int | None = None


class MatchingWeights(Value):
    """Relative weight of each matching criterion (matching normalises them)."""

    theme_fit: float
    learner_profile: float
    intentions: float
    business_function: float
    language: float
    time_zone: float
    cross_entity: float
    availability: float


class MatchingPolicy(Value):
    weights: MatchingWeights
    language_required: bool
    objective: MatchingObjective


class ProgrammeSettings(Value):
    """Everything a programme configures; events carry the whole of it."""

    themes: list[Theme]
    languages: list[str]  # ISO 639-1, lower case
    learner_profiles: list[LearnerProfile]
    intentions: list[IntentionOption]
    needs_questions: list[NeedsQuestion]
    qualification_rule: QualificationRule
    seniority_rule: SeniorityRule
    matching: MatchingPolicy
    #: GDPR retention: days after a pair ends before its free-text notes
    #: (session notes, cancellation reasons, check-ins, decline/dissolve
    #: notes) are erased by shredding the pair's key. Absent in events written
    #: before it existed: they read as the default.
    notes_retention_days: int = 365


class ThemeLevel(Value):
    """A theme with a self-rated level, 1 (novice) to 5 (expert)."""

    theme: str
    level: int


class ParticipantProfile(Value):
    """The matchable profile: what matching scores and insights analyses.

    No name, e-mail or free text here; references to people are the
    top-level personal fields of the events.
    """

    entity: str
    business_function: str
    job_level: int  # 1 = entry level; higher is more senior
    tenure_years: int
    generation_band: GenerationBand | None = None
    languages: list[str]
    time_zone: str  # IANA name
    learner_profile: LearnerProfile
    intentions: list[str]
    themes_wanted: list[ThemeLevel]
    themes_offered: list[ThemeLevel]
    sessions_per_month: int
    capacity: int | None = None  # mentors only: how many mentees (1-3)
    #: From the HR directory only (SCIM enterprise extension); absent in
    #: events written before it existed and for people enrolled by hand.
    department: str | None = None


class NeedsAnswer(Value):
    question_id: str
    themes: list[str]


class QualificationScores(Value):
    case_study_score: int  # 0-100
    teaching_ease: int  # 1-5
    interpersonal_skills: int  # 1-5
    training_completed: bool


# --------------------------------------------------------------------------- bases


class EnrollmentEvent(DomainEvent):
    """Every enrollment event records who made the change."""

    actor: Actor


class WaveEvent(EnrollmentEvent):
    wave_id: UUID
    programme_id: UUID
    country: str  # ISO 3166-1 alpha-2


class ParticipantEvent(EnrollmentEvent):
    participant_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str  # the wave's


# --------------------------------------------------------------------------- programme


@event(CONTEXT, "ProgrammeCreated", version=1)
class ProgrammeCreated(EnrollmentEvent):
    """A global HR admin created a mentoring programme."""

    programme_id: UUID
    programme_name: str
    mode: ProgrammeMode
    settings: ProgrammeSettings


@event(CONTEXT, "ProgrammeSettingsChanged", version=1)
class ProgrammeSettingsChanged(EnrollmentEvent):
    """A programme's settings changed; ``settings`` is the whole new set,
    ``changed`` names the top-level settings that differ."""

    programme_id: UUID
    settings: ProgrammeSettings
    changed: list[str]


# --------------------------------------------------------------------------- wave


@event(CONTEXT, "WaveOpened", version=1)
class WaveOpened(WaveEvent):
    """A programme opened a wave in one country; enrolment is open."""

    wave_name: str
    region: str
    committee: str  # the owning regional HR committee
    starts_on: date
    ends_on: date
    target_pairs: int
    #: Enrolment closes by itself when this day begins (UTC, platform clock);
    #: None: when the committee closes it, or when the wave ends.
    enrolment_closes_on: date | None = None


@event(CONTEXT, "WaveEnrolmentClosed", version=1)
class WaveEnrolmentClosed(WaveEvent):
    """A wave stopped taking enrolments (matching may run). ``actor`` is the
    committee, or ``service:enrollment`` (client ``wave-calendar``) when its
    day came: the committee is told either way by this event."""


@event(CONTEXT, "WaveEnded", version=1)
class WaveEnded(WaveEvent):
    """A wave is over: matching completes its formed pairs (their closing
    surveys follow). ``actor``: the committee, or ``service:enrollment``
    (client ``wave-calendar``) once the day after ``ends_on`` began."""


# --------------------------------------------------------------------------- participant


@event(CONTEXT, "ParticipantEnrolled", version=1)
class ParticipantEnrolled(ParticipantEvent):
    """A person enrolled into an open wave as mentor or mentee.

    ``employee_ref`` and ``manager_ref`` are HR references: matching compares
    them to exclude reporting lines. ``import_id`` names the bulk import the
    enrolment came from (None for a single enrolment).
    """

    personal_fields = frozenset({"display_name", "email", "motivation", "employee_ref", "manager_ref"})

    role: Role
    profile: ParticipantProfile
    employee_ref: str
    manager_ref: str | None = None
    display_name: str
    email: str
    motivation: str
    import_id: str | None = None


@event(CONTEXT, "ParticipantProfileUpdated", version=1)
class ParticipantProfileUpdated(ParticipantEvent):
    """A participant's profile changed.

    ``profile`` is the whole new matchable profile; a personal field is
    present only when it changed (absent: unchanged). ``manager_ref_removed``
    says the manager reference was cleared. ``cause`` says where the change
    came from: ``directory`` when the HR directory changed the linked person
    (events written before it existed read as ``request``).
    """

    personal_fields = frozenset({"display_name", "email", "motivation", "manager_ref"})

    role: Role
    profile: ParticipantProfile
    changed: list[str]
    display_name: str | None = None
    email: str | None = None
    motivation: str | None = None
    manager_ref: str | None = None
    manager_ref_removed: bool = False
    cause: ProfileChangeCause = ProfileChangeCause.REQUEST


@event(CONTEXT, "ParticipantWithdrew", version=1)
class ParticipantWithdrew(ParticipantEvent):
    """A participant left the programme; ``reason`` is their free text.
    ``cause`` is ``left_organisation`` when the HR directory deactivated the
    person (the reason then reads "left the organisation"); events written
    before it existed read as ``requested``."""

    personal_fields = frozenset({"reason"})

    role: Role
    reason: str
    cause: WithdrawalCause = WithdrawalCause.REQUESTED


@event(CONTEXT, "ParticipantRelocated", version=1)
class ParticipantRelocated(ParticipantEvent):
    """The HR directory now places the participant in another country than
    their wave's (``country``). Nothing moves by itself: the participant
    stays in the wave and their pairs go on; the wave's committee decides
    (withdraw them and enrol them in a wave of ``directory_country``, or keep
    them). ``directory_country`` None: the directory no longer says."""

    role: Role
    directory_country: str | None


@event(CONTEXT, "ParticipantTransferred", version=1)
class ParticipantTransferred(ParticipantEvent):
    """A committee (between its own countries) or a global HR admin (any
    countries of the organisation) moved a participant to another open wave
    of the same programme, perhaps in another country, instead of a
    withdrawal and a new enrolment: the person keeps their id, profile,
    needs answers and qualification. ``wave_id`` and ``country`` are where
    the person is now, ``from_*`` where they were; ``actor`` approved it.
    Matching ends the person's open pairs (reason ``transferred``)."""

    role: Role
    from_wave_id: UUID
    from_country: str


@event(CONTEXT, "ParticipantErased", version=1)
class ParticipantErased(ParticipantEvent):
    """GDPR erasure: the participant's data keys are shredded (libs/gdpr), so
    every personal value about them in the log now reads as erased; every
    service drops or anonymises the person in its read models. Carries no
    personal data itself."""

    role: Role


@event(CONTEXT, "NeedsAnswered", version=1)
class NeedsAnswered(ParticipantEvent):
    """A participant answered the needs questionnaire; ``themes_wanted`` is
    the resulting list (the answers' themes added to the earlier ones)."""

    personal_fields = frozenset({"comments"})

    answers: list[NeedsAnswer]
    comments: dict[str, str] = {}  # question_id -> free text
    themes_wanted: list[ThemeLevel]


@event(CONTEXT, "MentorQualificationAssessed", version=1)
class MentorQualificationAssessed(ParticipantEvent):
    """A mentor's qualification was assessed under the programme's rule;
    ``qualified`` is the outcome (only qualified mentors are matchable)."""

    scores: QualificationScores
    rule: QualificationRule
    qualified: bool
