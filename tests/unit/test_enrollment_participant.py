"""Participant rules: enrolment into open waves, catalogue themes, roles,
capacity, seniority, needs questionnaire, qualification, withdrawal."""

from __future__ import annotations

import uuid

import pytest

from libs.events.contexts.enrollment import (
    MentorQualificationAssessed,
    NeedsAnswer,
    NeedsAnswered,
    ParticipantEnrolled,
    ParticipantProfileUpdated,
    ParticipantWithdrew,
    ProgrammeMode,
    QualificationScores,
    Role,
    SeniorityRule,
    ThemeLevel,
)
from services.enrollment.domain.errors import InvalidInput, InvalidState
from services.enrollment.domain.participant import Enrolment, Participant
from services.enrollment.domain.values import ParticipantStatus, generation_band
from tests.support.enrollment_domain import ACTOR, ORG, enrolled, enrolment, profile, programme, wave


def issues_of(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return sorted(issue.field for issue in exc.value.issues)


def test_enrolment_records_the_matchable_profile_and_personal_fields() -> None:
    prog = programme()
    w = wave(prog, "FR")
    subject = Participant.enrol(
        participant_id=uuid.uuid4(), programme=prog, wave=w, enrolment=enrolment(Role.MENTEE), actor=ACTOR
    )
    [event] = subject.take_pending()
    assert isinstance(event, ParticipantEnrolled)
    assert (event.programme_id, event.wave_id, event.country, event.role) == (prog.id, w.id, "FR", Role.MENTEE)
    assert event.display_name == "Ada" and event.actor == ACTOR
    assert {"display_name", "email", "motivation"} <= ParticipantEnrolled.personal_fields
    assert not set(ParticipantEnrolled.personal_fields) & set(event.profile.model_dump())  # the profile holds none
    assert subject.status is ParticipantStatus.ENROLLED and subject.matchable


def test_enrolment_only_into_an_open_wave() -> None:
    prog = programme()
    w = wave(prog)
    w.close_enrolment(ACTOR)
    with pytest.raises(InvalidState, match="enrolment is closed"):
        enrolled(prog, w, Role.MENTEE)


def test_the_country_given_must_be_the_waves() -> None:
    prog = programme()
    data = enrolment(Role.MENTEE)
    with pytest.raises(InvalidInput) as exc:
        Participant.enrol(
            participant_id=uuid.uuid4(),
            programme=prog,
            wave=wave(prog, "FR"),
            enrolment=Enrolment(**{**vars(data), "country": "DE"}),
            actor=ACTOR,
        )
    assert issues_of(exc) == ["country"]


def test_themes_come_from_the_programme_catalogue() -> None:
    prog = programme()
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTEE, themes_wanted=[ThemeLevel(theme="cooking", level=2)])
    assert issues_of(exc) == ["themes_wanted.0.theme"]
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTOR, themes_offered=[ThemeLevel(theme="data_ai", level=9)])
    assert issues_of(exc) == ["themes_offered.0.level"]
    twice = [ThemeLevel(theme="data_ai", level=1), ThemeLevel(theme="data_ai", level=2)]
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTEE, themes_wanted=twice)
    assert issues_of(exc) == ["themes_wanted"]


def test_reverse_mentees_want_and_mentors_offer() -> None:
    prog = programme(ProgrammeMode.REVERSE)
    offered = [ThemeLevel(theme="data_ai", level=3)]
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTEE, themes_offered=offered)
    assert issues_of(exc) == ["themes_offered"]
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTOR, themes_wanted=offered)
    assert issues_of(exc) == ["themes_wanted"]
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTOR, themes_offered=[])
    assert issues_of(exc) == ["themes_offered"]


def test_mutual_programmes_allow_both_directions() -> None:
    prog = programme(ProgrammeMode.MUTUAL)
    both = {
        "themes_wanted": [ThemeLevel(theme="e_commerce", level=1)],
        "themes_offered": [ThemeLevel(theme="data_ai", level=4)],
    }
    mentee = enrolled(prog, wave(prog), Role.MENTEE, **both)
    mentor = enrolled(prog, wave(prog), Role.MENTOR, **both, job_level=18)  # and a senior mentor is fine
    assert mentee.profile.themes_offered and mentor.profile.themes_wanted


@pytest.mark.parametrize("capacity", [0, 4])
def test_a_mentor_takes_one_to_three_mentees(capacity: int) -> None:
    prog = programme()
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTOR, capacity=capacity)
    assert issues_of(exc) == ["capacity"]


def test_mentor_capacity_defaults_to_one_and_mentees_have_none() -> None:
    prog = programme()
    assert enrolled(prog, wave(prog), Role.MENTOR, capacity=None).profile.capacity == 1
    assert enrolled(prog, wave(prog), Role.MENTOR, capacity=3).profile.capacity == 3
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTEE, capacity=1)
    assert issues_of(exc) == ["capacity"]


def test_seniority_rule_of_reverse_programmes_is_configurable() -> None:
    rule = SeniorityRule(enforced=True, min_level_gap=1, mentor_max_job_level=5, mentee_min_job_level=8)
    prog = programme(seniority_rule=rule.model_dump())
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTOR, job_level=6)
    assert issues_of(exc) == ["job_level"]
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTEE, job_level=7)
    assert issues_of(exc) == ["job_level"]
    enrolled(prog, wave(prog), Role.MENTOR, job_level=5)
    enrolled(prog, wave(prog), Role.MENTEE, job_level=8)
    relaxed = programme(seniority_rule={**rule.model_dump(), "enforced": False})
    enrolled(relaxed, wave(relaxed), Role.MENTOR, job_level=15)


def test_languages_learner_profile_and_intentions_come_from_the_programme() -> None:
    prog = programme(languages=["en"], learner_profiles=["theoretical"])
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, wave(prog), Role.MENTEE, languages=["de"], intentions=["understand_businesses"])
    # "understand_businesses" is a mentor intention; mentees cannot pick it.
    assert issues_of(exc) == ["intentions.0", "languages", "learner_profile"]


def test_matchable_mentees_want_a_theme_and_mentors_are_qualified() -> None:
    prog = programme()
    assert not enrolled(prog, wave(prog), Role.MENTEE, themes_wanted=[]).matchable
    mentor = enrolled(prog, wave(prog), Role.MENTOR)
    assert not mentor.matchable
    mentor.assess_qualification(prog, wave(prog), scores(80), ACTOR)
    assert mentor.matchable


def scores(case_study: int, training: bool = True) -> QualificationScores:
    return QualificationScores(
        case_study_score=case_study, teaching_ease=4, interpersonal_skills=4, training_completed=training
    )


def test_qualification_follows_the_programmes_rule_and_can_be_redone() -> None:
    prog = programme()
    w = wave(prog)
    mentor = enrolled(prog, w, Role.MENTOR)
    mentor.assess_qualification(prog, w, scores(40), ACTOR)
    assert not mentor.is_qualified
    mentor.assess_qualification(prog, w, scores(75), ACTOR)
    events = mentor.take_pending()
    assert [type(e) for e in events][1:] == [MentorQualificationAssessed, MentorQualificationAssessed]
    last = events[-1]
    assert (
        isinstance(last, MentorQualificationAssessed)
        and last.qualified
        and last.rule == prog.settings.qualification_rule
    )
    assert mentor.is_qualified


def test_only_mentors_are_qualified_and_scores_are_in_range() -> None:
    prog = programme()
    w = wave(prog)
    with pytest.raises(InvalidState, match="Only mentors"):
        enrolled(prog, w, Role.MENTEE).assess_qualification(prog, w, scores(80), ACTOR)
    bad = QualificationScores(case_study_score=101, teaching_ease=0, interpersonal_skills=6, training_completed=True)
    with pytest.raises(InvalidInput) as exc:
        enrolled(prog, w, Role.MENTOR).assess_qualification(prog, w, bad, ACTOR)
    assert issues_of(exc) == ["case_study_score", "interpersonal_skills", "teaching_ease"]


def answers(*pairs: tuple[str, list[str]]) -> list[NeedsAnswer]:
    return [NeedsAnswer(question_id=q, themes=t) for q, t in pairs]


def test_needs_answers_feed_the_themes_wanted() -> None:
    prog = programme()
    w = wave(prog)
    mentee = enrolled(prog, w, Role.MENTEE, themes_wanted=[ThemeLevel(theme="data_ai", level=2)])
    mentee.answer_needs(
        prog,
        w,
        answers(("priorities", ["data_ai", "cybersecurity"]), ("least_at_ease", ["e_commerce"])),
        {"priorities": "AI!"},
        ACTOR,
    )
    event = mentee.take_pending()[-1]
    assert isinstance(event, NeedsAnswered) and event.comments == {"priorities": "AI!"}
    assert [(t.theme, t.level) for t in mentee.profile.themes_wanted] == [
        ("data_ai", 2),
        ("cybersecurity", 1),
        ("e_commerce", 1),
    ]
    assert event.themes_wanted == mentee.profile.themes_wanted
    assert NeedsAnswered.personal_fields == {"comments"}


def test_needs_answers_must_answer_each_question_once_with_allowed_themes() -> None:
    prog = programme(
        needs_questions=[
            {"question_id": "priorities", "text": "?", "theme_options": ["data_ai"]},
            {"question_id": "least_at_ease", "text": "?"},
        ]
    )
    w = wave(prog)
    mentee = enrolled(prog, w, Role.MENTEE)
    with pytest.raises(InvalidInput) as exc:
        mentee.answer_needs(prog, w, answers(("priorities", ["e_commerce"]), ("nope", [])), {"other": "x"}, ACTOR)
    assert issues_of(exc) == ["answers", "answers.0.themes.0", "answers.1.question_id", "comments.other"]
    with pytest.raises(InvalidInput) as exc:
        mentee.answer_needs(prog, w, answers(("priorities", []), ("priorities", []), ("least_at_ease", [])), {}, ACTOR)
    assert issues_of(exc) == ["answers"]


def test_reverse_mentors_do_not_answer_the_needs_questionnaire() -> None:
    prog = programme()
    w = wave(prog)
    with pytest.raises(InvalidState, match="only mentees"):
        enrolled(prog, w, Role.MENTOR).answer_needs(
            prog, w, answers(("priorities", []), ("least_at_ease", [])), {}, ACTOR
        )
    mutual = programme(ProgrammeMode.MUTUAL)
    mw = wave(mutual)
    mentor = enrolled(mutual, mw, Role.MENTOR)
    mentor.answer_needs(mutual, mw, answers(("priorities", ["e_commerce"]), ("least_at_ease", [])), {}, ACTOR)
    assert [t.theme for t in mentor.profile.themes_wanted] == ["e_commerce"]


def test_profile_update_checks_only_what_changes() -> None:
    prog = programme()
    w = wave(prog)
    mentee = enrolled(prog, w, Role.MENTEE, themes_wanted=[ThemeLevel(theme="e_commerce", level=1)])
    mentee.take_pending()
    prog.change_settings({"themes": [t.model_dump() for t in prog.settings.themes if t.code != "e_commerce"]}, ACTOR)
    # A theme since removed from the catalogue does not block another change...
    mentee.update_profile(prog, w, {"time_zone": "Europe/Berlin"}, {"email": "new@example.com"}, ACTOR)
    [event] = mentee.take_pending()
    assert isinstance(event, ParticipantProfileUpdated)
    assert event.changed == ["time_zone", "email"] and event.email == "new@example.com" and event.display_name is None
    assert mentee.person.email == "new@example.com" and mentee.profile.time_zone == "Europe/Berlin"
    # ...but re-sending it is checked.
    with pytest.raises(InvalidInput) as exc:
        mentee.update_profile(prog, w, {"themes_wanted": [{"theme": "e_commerce", "level": 2}]}, {}, ACTOR)
    assert issues_of(exc) == ["themes_wanted.0.theme"]


def test_profile_update_without_change_records_nothing_and_manager_can_be_removed() -> None:
    prog = programme()
    w = wave(prog)
    mentor = enrolled(prog, w, Role.MENTOR)
    mentor.take_pending()
    mentor.update_profile(prog, w, {"capacity": 2}, {"display_name": "Ada"}, ACTOR)
    assert mentor.pending == []
    mentor.update_profile(prog, w, {}, {"manager_ref": "M-1"}, ACTOR)
    mentor.update_profile(prog, w, {}, {"manager_ref": None}, ACTOR)
    added, removed = mentor.take_pending()
    assert isinstance(added, ParticipantProfileUpdated) and added.manager_ref == "M-1" and not added.manager_ref_removed
    assert isinstance(removed, ParticipantProfileUpdated) and removed.manager_ref_removed
    assert mentor.person.manager_ref is None
    with pytest.raises(InvalidInput) as exc:
        mentor.update_profile(prog, w, {"capacity": None}, {"email": ""}, ACTOR)
    assert issues_of(exc) == ["capacity", "email"]


def test_withdrawal_ends_every_change() -> None:
    prog = programme()
    w = wave(prog)
    mentor = enrolled(prog, w, Role.MENTOR)
    mentor.withdraw(w, "New job", ACTOR)
    assert isinstance(mentor.pending[-1], ParticipantWithdrew) and ParticipantWithdrew.personal_fields == {"reason"}
    assert mentor.status is ParticipantStatus.WITHDRAWN and not mentor.matchable
    for change in (
        lambda: mentor.withdraw(w, "again", ACTOR),
        lambda: mentor.update_profile(prog, w, {"capacity": 3}, {}, ACTOR),
        lambda: mentor.assess_qualification(prog, w, scores(90), ACTOR),
    ):
        with pytest.raises(InvalidState, match="withdrawn"):
            change()


def test_participants_of_an_ended_wave_no_longer_change() -> None:
    prog = programme()
    w = wave(prog)
    mentee = enrolled(prog, w, Role.MENTEE)
    w.close_enrolment(ACTOR)
    mentee.update_profile(prog, w, {"sessions_per_month": 2}, {}, ACTOR)  # closed enrolment: still fine
    w.end(ACTOR)
    with pytest.raises(InvalidState, match="ended"):
        mentee.withdraw(w, "late", ACTOR)


def test_rebuild_replays_every_change() -> None:
    prog = programme()
    w = wave(prog)
    mentee = enrolled(prog, w, Role.MENTEE)
    mentee.update_profile(prog, w, {"job_level": 11}, {"manager_ref": "M-9"}, ACTOR)
    mentee.answer_needs(prog, w, answers(("priorities", ["cybersecurity"]), ("least_at_ease", [])), {}, ACTOR)
    mentee.withdraw(w, "Busy", ACTOR)
    rebuilt = Participant.rebuild(ORG, mentee.take_pending())
    assert rebuilt is not None and rebuilt.version == 4 and rebuilt.status is ParticipantStatus.WITHDRAWN
    assert rebuilt.profile == mentee.profile and rebuilt.person.manager_ref == "M-9" and rebuilt.needs_answers


def test_generation_bands_replace_birth_years() -> None:
    assert [generation_band(y) for y in (1960, 1965, 1980, 1981, 1996, 1997)] == [
        "baby_boomer",
        "gen_x",
        "gen_x",
        "gen_y",
        "gen_y",
        "gen_z",
    ]
    assert profile(Role.MENTEE).generation_band is None


def test_erasure_forgets_the_person_and_ends_every_change() -> None:
    from libs.events.contexts.enrollment import ParticipantErased
    from libs.gdpr.personal import ERASED

    prog = programme()
    w = wave(prog)
    mentor = enrolled(prog, w, Role.MENTOR)
    mentor.withdraw(w, "New job", ACTOR)  # erasure works whatever the state
    mentor.take_pending()
    mentor.erase(ACTOR)
    [event] = mentor.take_pending()
    assert isinstance(event, ParticipantErased) and not ParticipantErased.personal_fields
    assert mentor.status is ParticipantStatus.ERASED and not mentor.matchable
    assert {mentor.person.display_name, mentor.person.email, mentor.person.employee_ref} == {ERASED}
    mentor.erase(ACTOR)  # erasing again records nothing
    assert mentor.take_pending() == []
    with pytest.raises(InvalidState, match="erased"):
        mentor.update_profile(prog, w, {"capacity": 3}, {}, ACTOR)
