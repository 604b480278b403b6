"""Per-person survey language on the real stack: a participant's survey is
shown in the first of its profile's languages the survey has (from
enrollment's events, a profile change included), else in the programme's
default language."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from libs.events.contexts.enrollment import ParticipantEnrolled, ParticipantProfileUpdated, Role
from tests.support.enrollment_domain import profile
from tests.support.evaluation import HR, EvaluationEnv, evaluation_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[EvaluationEnv]:
    async for environment in evaluation_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("evaluation-language")):
        yield environment


def enrolled(env: EvaluationEnv, programme_id, wave_id, person: uuid.UUID, role: Role, languages: list[str]):
    event = ParticipantEnrolled(
        actor=HR, participant_id=person, programme_id=programme_id, wave_id=wave_id, country="DE", role=role,
        profile=profile(role, languages=languages), employee_ref=f"E-{person.hex[:6]}", display_name="Someone",
        email="someone@example.com", motivation="To learn.",
    )
    return str(person), event, "DE"


async def survey_of(env: EvaluationEnv, assignment: dict, participant: uuid.UUID) -> dict:
    response = await env.client.get(f"/v1/assignments/{assignment['assignment_id']}",
                                     headers=env.participant(participant))
    assert response.status_code == 200, response.text
    return response.json()["survey"]


async def test_each_participant_reads_its_survey_in_its_own_language(env: EvaluationEnv) -> None:
    programme = await env.programme(languages=["en", "fr"])  # English is the programme's default
    wave = await env.wave(programme, "DE", "Europe")
    pair = env.new_pair(programme, wave, "DE")
    await env.publish(
        enrolled(env, programme, wave, pair.mentee_id, Role.MENTEE, ["de", "fr", "en"]),  # French: the first it has
        enrolled(env, programme, wave, pair.mentor_id, Role.MENTOR, ["de"]),  # none: the programme's default
        env.formed(pair),
        env.held(pair),
    )
    mentee_survey = await survey_of(env, await env.one(pair.mentee_id, "digital_maturity", "pre"), pair.mentee_id)
    assert (mentee_survey["language"], mentee_survey["language_source"]) == ("fr", "profile")
    assert mentee_survey["languages"] == ["en", "fr"]  # every text is still there
    feedback = await env.one(pair.mentor_id, "session_feedback")
    mentor_survey = await survey_of(env, feedback, pair.mentor_id)
    assert (mentor_survey["language"], mentor_survey["language_source"]) == ("en", "programme_default")

    # The mentor adds French to its profile: its survey follows.
    updated = ParticipantProfileUpdated(
        actor=HR, participant_id=pair.mentor_id, programme_id=programme, wave_id=wave, country="DE",
        role=Role.MENTOR, profile=profile(Role.MENTOR, languages=["fr", "de"]), changed=["languages"],
    )
    await env.publish((str(pair.mentor_id), updated, "DE"))
    mentor_survey = await survey_of(env, feedback, pair.mentor_id)
    assert (mentor_survey["language"], mentor_survey["language_source"]) == ("fr", "profile")
    # HR reading the same assignment sees the language its participant reads it in.
    response = await env.client.get(f"/v1/assignments/{feedback['assignment_id']}", headers=env.auth())
    assert response.json()["survey"]["language"] == "fr"


async def test_someone_enrollment_never_told_about_reads_the_programme_default(env: EvaluationEnv) -> None:
    programme = await env.programme(languages=["fr", "en"])
    wave = await env.wave(programme, "DE", "Europe")
    pair = env.new_pair(programme, wave, "DE")
    await env.publish(env.formed(pair))
    survey = await survey_of(env, await env.one(pair.mentee_id, "digital_maturity", "pre"), pair.mentee_id)
    assert (survey["language"], survey["language_source"]) == ("fr", "programme_default")
