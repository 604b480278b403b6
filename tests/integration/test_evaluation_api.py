"""The evaluation service on real PostgreSQL and a real broker: pairs formed,
sessions held and pairs completed upstream assign surveys through the broker;
answers are checked against the template version and taken once; the maturity
delta and the aggregates come out right on known answers, withheld under k;
bad input is problem+json and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from libs.events import registry
from libs.eventstore.store import EventStore
from libs.messaging.consumer import rebuild
from services.evaluation.bootstrap import Evaluation
from tests.support.evaluation import EvaluationEnv, evaluation_env
from tests.support.kafka import wait_for
from tests.support.pagination import listed, walk_across_rebuild
from tests.support.problems import fields, problem

pytestmark = pytest.mark.integration

MATURITY = ["tools", "data_ai", "social_media", "security", "lead_digital"]


@pytest.fixture(scope="module")
async def env(
    pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EvaluationEnv]:
    async for environment in evaluation_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("evaluation-api")):
        yield environment


def maturity(level: int) -> dict[str, int]:
    return dict.fromkeys(MATURITY, level)


async def templates(env: EvaluationEnv, programme_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    response = await env.client.get(f"/v1/programmes/{programme_id}/templates", headers=env.auth())
    assert response.status_code == 200, response.text
    return {t["kind"]: t for t in response.json()}


# --------------------------------------------------------------------------- templates and settings


async def test_a_new_programme_gets_default_templates_in_its_languages(env: EvaluationEnv) -> None:
    programme = await env.programme(["fr", "en", "de"])
    found = await templates(env, programme)
    assert set(found) == {"digital_maturity", "session_feedback", "closing_self_assessment", "mentor_questionnaire"}
    survey = found["digital_maturity"]
    assert (survey["template_version"], survey["origin"], survey["languages"]) == (1, "default", ["fr", "en", "de"])
    assert [q["question_id"] for q in survey["questions"]] == MATURITY
    first = survey["questions"][0]["text"]
    assert set(first) == {"fr", "en", "de"} and first["fr"] != first["en"] == first["de"]
    committee = env.auth("regional_committee", countries=["FR"])
    assert (await env.client.get(f"/v1/programmes/{programme}/templates", headers=committee)).status_code == 200
    other_org = env.auth(org="org-b")
    problem(await env.client.get(f"/v1/programmes/{programme}/templates", headers=other_org), 404)


async def test_a_version_missing_a_language_is_422_naming_it_and_changes_nothing(env: EvaluationEnv) -> None:
    programme = await env.programme(["en", "fr"])
    template = (await templates(env, programme))["session_feedback"]
    path = f"/v1/templates/{template['template_id']}/versions"
    body = {
        "title": {"en": "Feedback", "fr": "Retour"},
        "questions": [
            {"question_id": "useful", "kind": "scale", "text": {"en": "Useful?"}},
            {"question_id": "mood", "kind": "single_choice", "text": {"en": "Mood", "fr": "Humeur"},
             "options": [{"code": "good", "text": {"en": "Good", "fr": "Bien"}}, {"code": "bad", "text": {"en": "Bad"}}]},
        ],
    }
    before = await env.count_events()
    invalid = problem(await env.client.post(path, json=body, headers=env.auth()), 422)
    assert fields(invalid) == ["body.questions.0.text.fr", "body.questions.1.options.1.text.fr"]
    unknown = problem(await env.client.post(path, json={**body, "colour": "red"}, headers=env.auth()), 422)
    assert fields(unknown) == ["body.colour"]
    assert await env.count_events() == before
    committee = env.auth("regional_committee", countries=["FR"])
    problem(await env.client.post(path, json=body, headers=committee), 403)

    body["questions"][0]["text"]["fr"] = "Utile ?"
    body["questions"][1]["options"][1]["text"]["fr"] = "Mal"
    created = await env.client.post(path, json=body, headers=env.auth("hr_admin", sub="hr-7"))
    assert created.status_code == 201, created.text
    assert (created.json()["template_version"], created.json()["origin"]) == (2, "hr")
    assert created.json()["published_by"]["subject"] == "hr-7"
    old = await env.client.get(f"/v1/templates/{template['template_id']}?version=1", headers=env.auth())
    assert [q["question_id"] for q in old.json()["questions"]] == ["useful", "topics_covered", "comment"]
    problem(await env.client.get(f"/v1/templates/{template['template_id']}?version=3", headers=env.auth()), 404)


async def test_k_anonymity_is_configurable_but_never_below_three(env: EvaluationEnv) -> None:
    programme = await env.programme()
    path = f"/v1/programmes/{programme}/evaluation-settings"
    assert (await env.client.get(path, headers=env.auth())).json()["k_anonymity"] == 5
    before = await env.count_events()
    body = problem(await env.client.put(path, json={"k_anonymity": 2}, headers=env.auth()), 422)
    assert fields(body) == ["body.k_anonymity"]
    problem(await env.client.put(path, json={"k_anonymity": 4, "x": 1}, headers=env.auth()), 422)
    problem(await env.client.put(path, json={"k_anonymity": 4}, headers=env.auth("regional_committee", countries=["FR"])), 403)
    assert await env.count_events() == before
    changed = await env.client.put(path, json={"k_anonymity": 3}, headers=env.auth())
    assert changed.json() == {"programme_id": str(programme), "k_anonymity": 3, "version": 1}
    problem(await env.client.put(f"/v1/programmes/{uuid.uuid4()}/evaluation-settings", json={"k_anonymity": 3},
                                 headers=env.auth()), 404)


# --------------------------------------------------------------------------- the event flow


async def test_a_pairs_life_assigns_its_surveys_through_the_broker(env: EvaluationEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    (formed,) = await env.publish(env.formed(pair))

    pre = await env.one(pair.mentee_id, "digital_maturity")
    assert (pre["phase"], pre["respondent"], pre["status"], pre["template_version"]) == ("pre", "mentee", "open", 1)
    assert datetime.fromisoformat(pre["due_at"]) == formed.time + timedelta(days=14)
    assert pre["assigned_by"]["subject"] == "service:evaluation"
    stored = await EventStore(env.pool, env.schema).read_stream(pre["assignment_id"])
    assert stored[0].causationid == str(formed.id) and stored[0].country == "FR"
    assert await env.assignments(participant_id=pair.mentor_id) == []  # the mentor's questionnaire comes at the end

    session = uuid.uuid4()
    await env.publish(env.held(pair, session))
    feedback = await env.assignments(pair_id=pair.pair_id, kind="session_feedback")
    assert {(a["participant_id"], a["session_id"]) for a in feedback} == {
        (str(pair.mentee_id), str(session)), (str(pair.mentor_id), str(session)),
    }

    # HR publishes a new maturity version meanwhile: the post-questionnaire keeps the pre's.
    template = (await templates(env, programme))["digital_maturity"]
    body = {"title": template["title"], "questions": template["questions"][:2]}
    assert (await env.client.post(f"/v1/templates/{template['template_id']}/versions", json=body,
                                  headers=env.auth())).status_code == 201
    await env.publish(env.completed(pair))
    post = await env.one(pair.mentee_id, "digital_maturity", "post")
    assert post["template_version"] == 1
    assert post["survey"] is None  # lists leave the questions out; a single read has them
    single = (await env.client.get(f"/v1/assignments/{post['assignment_id']}",
                                   headers=env.participant(pair.mentee_id))).json()
    assert [q["question_id"] for q in single["survey"]["questions"]] == MATURITY
    assert (await env.one(pair.mentee_id, "closing_self_assessment"))["phase"] == "closing"
    assert (await env.one(pair.mentor_id, "mentor_questionnaire"))["respondent"] == "mentor"


async def test_a_trigger_before_its_programme_waits_for_it(env: EvaluationEnv) -> None:
    programme, wave = uuid.uuid4(), uuid.uuid4()
    pair = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(pair), env.held(pair))  # programme unknown yet
    assert await env.assignments(pair_id=pair.pair_id) == []
    from libs.events.contexts.enrollment import ProgrammeCreated, ProgrammeMode
    from services.enrollment.domain.values import default_settings
    from tests.support.evaluation import HR

    created = ProgrammeCreated(programme_id=programme, programme_name="Late", mode=ProgrammeMode.REVERSE,
                               settings=default_settings(ProgrammeMode.REVERSE), actor=HR)
    await env.publish((str(programme), created, None))
    kinds = sorted(a["kind"] for a in await env.assignments(pair_id=pair.pair_id))
    assert kinds == ["digital_maturity", "session_feedback", "session_feedback"]


async def test_a_dissolved_pair_has_its_open_surveys_cancelled(env: EvaluationEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(pair), env.held(pair))
    feedback = await env.one(pair.mentee_id, "session_feedback")
    assert (await env.answer(feedback, {"useful": 4, "topics_covered": "yes"})).status_code == 200
    await env.publish(env.dissolved(pair), env.held(pair))  # a late session of a dissolved pair: no survey
    statuses = sorted((a["kind"], a["respondent"], a["status"]) for a in await env.assignments(pair_id=pair.pair_id))
    assert statuses == [
        ("digital_maturity", "mentee", "cancelled"),
        ("session_feedback", "mentee", "answered"),
        ("session_feedback", "mentor", "cancelled"),
    ]
    pre = await env.one(pair.mentee_id, "digital_maturity")
    body = problem(await env.answer(pre, maturity(3)), 409)
    assert "cancelled" in body["detail"]


# --------------------------------------------------------------------------- answers


async def test_answers_are_checked_against_the_version_and_taken_once(env: EvaluationEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(pair), env.held(pair))
    feedback = await env.one(pair.mentee_id, "session_feedback")
    path = f"/v1/assignments/{feedback['assignment_id']}/answers"
    own = env.participant(pair.mentee_id)
    before = await env.count_events()

    bad = problem(await env.answer(feedback, {"useful": 7, "topics_covered": "maybe", "nope": 1}), 422)
    assert fields(bad) == ["body.answers.nope", "body.answers.topics_covered", "body.answers.useful"]
    missing = problem(await env.answer(feedback, {"topics_covered": "yes"}), 422)
    assert fields(missing) == ["body.answers.useful"]
    actions = problem(await env.answer(feedback, {"useful": 4, "topics_covered": "yes"},
                                       actions=[{"description": "x", "status": "started"}]), 422)
    assert fields(actions) == ["body.actions"]
    unknown = problem(await env.client.post(path, json={"answers": {}, "rating": 5}, headers=own), 422)
    assert fields(unknown) == ["body.rating"]
    # Only the participant assigned: the mentor is a stranger here (404), HR may not answer (403).
    problem(await env.client.post(path, json={"answers": {"useful": 4, "topics_covered": "yes"}},
                                  headers=env.participant(pair.mentor_id)), 404)
    problem(await env.client.post(path, json={"answers": {"useful": 4, "topics_covered": "yes"}},
                                  headers=env.auth()), 403)
    problem(await env.client.post(path, json={"answers": {"useful": 4, "topics_covered": "yes"}},
                                  headers=env.participant(pair.mentee_id, org="org-b")), 404)
    assert await env.count_events() == before

    answered = await env.answer(feedback, {"useful": 4, "topics_covered": "partly", "comment": "Very concrete."})
    assert answered.status_code == 200, answered.text
    doc = answered.json()
    assert doc["status"] == "answered" and doc["free_text"] == {"comment": "Very concrete."}
    assert {a["question_id"]: a["scale"] for a in doc["answers"]}["useful"] == 4
    again = problem(await env.answer(feedback, {"useful": 5, "topics_covered": "yes"}), 409)
    assert "answered already" in again["detail"]
    assert await env.count_events() == before + 1
    # HR sees the answer but not what the person wrote.
    seen_by_hr = (await env.client.get(f"/v1/assignments/{feedback['assignment_id']}", headers=env.auth())).json()
    assert seen_by_hr["status"] == "answered" and seen_by_hr["free_text"] is None

    events = await EventStore(env.pool, env.schema).read_stream(feedback["assignment_id"])
    answer_event = registry.load(events[-1])
    assert answer_event.actor.subject == str(pair.mentee_id)
    assert answer_event.free_text == {"comment": "Very concrete."}
    assert all(item.question_id != "comment" for item in answer_event.answers)


async def test_the_closing_self_assessment_records_committed_actions(env: EvaluationEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(pair), env.completed(pair))
    closing = await env.one(pair.mentee_id, "closing_self_assessment")
    actions = [{"description": "Run team meetings on a shared board", "status": "started"},
               {"description": "Open a data project", "status": "planned"}]
    response = await env.answer(closing, {"new_skills": 4, "apply_at_work": 5, "themes_progressed": ["data_ai"]},
                                actions=actions)
    assert response.status_code == 200, response.text
    assert response.json()["actions"] == [{"status": a["status"], "description": a["description"]} for a in actions]
    seen_by_hr = (await env.client.get(f"/v1/assignments/{closing['assignment_id']}", headers=env.auth())).json()
    assert seen_by_hr["actions"] == [{"status": "started", "description": None},
                                     {"status": "planned", "description": None}]


# --------------------------------------------------------------------------- due dates and reminders


async def test_overdue_assignments_are_listed_and_reminded_weekly(env: EvaluationEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme, "PT", "Europe")
    pair = env.new_pair(programme, wave, "PT")
    await env.publish(env.formed(pair))
    committee = env.auth("regional_committee", countries=["PT"])
    env.clock.now = datetime.now(UTC) + timedelta(days=1)
    assert await env.assignments(committee, overdue="true") == []
    env.clock.now = datetime.now(UTC) + timedelta(days=15)
    (overdue,) = await env.assignments(committee, overdue="true")
    assert overdue["participant_id"] == str(pair.mentee_id) and overdue["overdue"] is True

    reminded = await env.client.post("/v1/assignments:remind-overdue", headers=committee)
    assert reminded.json() == {"reminded": [overdue["assignment_id"]]}
    again = await env.client.post("/v1/assignments:remind-overdue", headers=committee)
    assert again.json() == {"reminded": []}  # at most once a week
    doc = (await env.client.get(f"/v1/assignments/{overdue['assignment_id']}", headers=committee)).json()
    assert doc["reminders"] == 1
    env.clock.now += timedelta(days=8)
    assert (await env.client.post("/v1/assignments:remind-overdue", headers=committee)).json()["reminded"] == [
        overdue["assignment_id"]
    ]
    problem(await env.client.post("/v1/assignments:remind-overdue", headers=env.auth("ops")), 403)


# --------------------------------------------------------------------------- results


async def complete_pair(env: EvaluationEnv, programme: uuid.UUID, wave: uuid.UUID, country: str,
                        pre: int, post: int | None) -> uuid.UUID:
    """A pair formed and completed whose mentee answered ``pre`` then ``post`` on every question."""
    pair = env.new_pair(programme, wave, country)
    await env.publish(env.formed(pair), env.completed(pair))
    assert (await env.answer(await env.one(pair.mentee_id, "digital_maturity", "pre"), maturity(pre))).is_success
    if post is not None:
        response = await env.answer(await env.one(pair.mentee_id, "digital_maturity", "post"), maturity(post))
        assert response.is_success
        closing = await env.one(pair.mentee_id, "closing_self_assessment")
        actions = [{"description": "Started something", "status": "started"}]
        assert (await env.answer(closing, {"new_skills": 4, "apply_at_work": 4}, actions=actions)).is_success
    return pair.pair_id


async def test_deltas_and_aggregates_on_known_answers_with_k_anonymity(env: EvaluationEnv) -> None:
    programme = await env.programme()
    fr = await env.wave(programme, "FR", "Europe")
    be = await env.wave(programme, "BE", "Europe")
    br = await env.wave(programme, "BR", "Americas")
    # FR: three mentees 2 -> 3, 2 -> 3, 3 -> 3 (paired means 2.33 -> 3: +28.6 %), one pre only.
    first = await complete_pair(env, programme, fr, "FR", 2, 3)
    for pre, post in ((2, 3), (3, 3), (4, None)):
        await complete_pair(env, programme, fr, "FR", pre, post)
    await complete_pair(env, programme, be, "BE", 1, 2)
    await complete_pair(env, programme, br, "BR", 2, 4)

    pair = (await env.client.get(f"/v1/pairs/{first}/maturity", headers=env.auth())).json()
    assert pair == {"pair_id": str(first), "pre_answered": True, "post_answered": True,
                    "pre": 2.0, "post": 3.0, "delta": 1.0, "delta_percent": 50.0}

    path = f"/v1/programmes/{programme}/results"
    await env.client.put(f"/v1/programmes/{programme}/evaluation-settings", json={"k_anonymity": 3},
                         headers=env.auth())
    by_country = {g["group"]: g for g in (await env.client.get(path, params={"group_by": "country"},
                                                                headers=env.auth())).json()["groups"]}
    assert set(by_country) == {"FR", "BE", "BR"}
    france = by_country["FR"]
    assert france["maturity"]["delta"] == {"respondents": 3, "pre": 2.33, "post": 3.0,
                                           "change_of_means_percent": 28.6, "delta_percent": 28.6,
                                           "withheld": False}
    assert france["maturity"]["pre"] == {"respondents": 4, "value": 2.75, "withheld": False}
    assert france["response_rates"]["digital_maturity_post"] == {"assigned": 4, "answered": 3, "rate": 0.75}
    assert france["actions"] == {"respondents": 3, "started": 3, "planned": 0, "withheld": False}
    assert france["averages"]["closing_self_assessment"] == {"respondents": 3, "value": 4.0, "withheld": False}
    # One pair in Belgium: everything from answers is withheld, participation is not.
    belgium = by_country["BE"]
    assert belgium["maturity"]["delta"]["withheld"] and belgium["maturity"]["delta"]["change_of_means_percent"] is None
    assert belgium["maturity"]["pre"] == {"respondents": 1, "value": None, "withheld": True}
    assert belgium["actions"]["started"] is None
    assert belgium["response_rates"]["digital_maturity_pre"] == {"assigned": 1, "answered": 1, "rate": 1.0}

    by_region = {g["group"]: g for g in (await env.client.get(path, params={"group_by": "region"},
                                                               headers=env.auth())).json()["groups"]}
    # Europe: FR's three pairs and BE's (1 -> 2): paired means 2 -> 2.75 = +37.5 %.
    assert by_region["Europe"]["maturity"]["delta"]["change_of_means_percent"] == 37.5
    assert by_region["Americas"]["maturity"]["delta"]["withheld"] is True
    by_wave = (await env.client.get(path, params={"group_by": "wave", "wave_id": str(fr)}, headers=env.auth())).json()
    assert [g["group"] for g in by_wave["groups"]] == [str(fr)]
    whole = (await env.client.get(path, headers=env.auth())).json()["groups"]
    assert [g["group"] for g in whole] == ["all"]
    assert whole[0]["maturity"]["delta"]["respondents"] == 5
    assert "Started something" not in str(whole) and "free_text" not in str(whole)

    # k = 5: France's three respondents are no longer enough.
    await env.client.put(f"/v1/programmes/{programme}/evaluation-settings", json={"k_anonymity": 5},
                         headers=env.auth())
    strict = {g["group"]: g for g in (await env.client.get(path, params={"group_by": "country"},
                                                            headers=env.auth())).json()["groups"]}
    assert strict["FR"]["maturity"]["delta"]["withheld"] is True
    assert strict["FR"]["maturity"]["delta"]["respondents"] == 3

    committee = env.auth("regional_committee", countries=["BE", "FR"])
    mine = (await env.client.get(path, params={"group_by": "country"}, headers=committee)).json()["groups"]
    assert sorted(g["group"] for g in mine) == ["BE", "FR"]
    problem(await env.client.get(path, params={"country": "BR"}, headers=committee), 404)
    problem(await env.client.get(path, params={"group_by": "planet"}, headers=env.auth()), 422)


async def test_rebuilding_the_intake_from_the_log_assigns_nothing_twice(env: EvaluationEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(pair), env.held(pair), env.completed(pair))
    before = await env.count_events()
    assignments = await env.assignments(pair_id=pair.pair_id)
    assert len(assignments) == 6  # pre, feedback x2, post, closing, mentor

    intake = Evaluation(env.pool, EventStore(env.pool, env.schema)).intake()
    intake.name = env.consumer
    await rebuild(env.pool, env.schema, intake)
    assert await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.ref_pairs") == 0
    queued = await env.upstream.republish_all()
    assert queued > 0

    async def refilled() -> bool:
        applied = await env.pool.fetchval(
            f"SELECT count(*) FROM {env.schema}.applied_events WHERE consumer = $1", env.consumer
        )
        return applied >= queued

    await wait_for(refilled)
    assert await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.ref_pairs WHERE pair_id = $1",
                                   pair.pair_id) == 1
    assert await env.count_events() == before
    assert len(await env.assignments(pair_id=pair.pair_id)) == 6

    own = await Evaluation(env.pool, EventStore(env.pool, env.schema)).rebuild_read_tables()
    assert own == before
    assert len(await env.assignments(pair_id=pair.pair_id)) == 6


async def test_a_cursor_held_across_a_rebuild_neither_skips_nor_repeats(env: EvaluationEnv) -> None:
    """Lists page by each row's own id, not by row_id: `binome replay
    evaluation read-tables` renumbers every row."""
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(pair), env.held(pair), env.completed(pair))

    async def rebuild_tables() -> None:
        await Evaluation(env.pool, EventStore(env.pool, env.schema)).rebuild_read_tables()

    query = {"pair_id": str(pair.pair_id)}
    everything = await listed(env.client, "/v1/assignments", query, env.auth())
    assert len(everything) == 6
    walked = await walk_across_rebuild(env.client, "/v1/assignments", query, env.auth(), rebuild_tables)
    assert walked == everything


async def test_concurrent_answers_and_retries_store_one_answer(env: EvaluationEnv) -> None:
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(pair))
    pre = await env.one(pair.mentee_id, "digital_maturity")
    path = f"/v1/assignments/{pre['assignment_id']}/answers"
    headers = {**env.participant(pair.mentee_id), "Idempotency-Key": "answer-1"}
    first = await env.client.post(path, json={"answers": maturity(3)}, headers=headers)
    retried = await env.client.post(path, json={"answers": maturity(3)}, headers=headers)
    assert first.status_code == retried.status_code == 200
    assert retried.headers["Idempotent-Replayed"] == "true" and retried.json() == first.json()

    other = env.new_pair(programme, wave, "FR")
    await env.publish(env.formed(other))
    racing = await env.one(other.mentee_id, "digital_maturity")
    responses = await asyncio.gather(*(env.answer(racing, maturity(level)) for level in (2, 4)))
    assert sorted(r.status_code for r in responses) == [200, 409]
    events = await EventStore(env.pool, env.schema).read_stream(racing["assignment_id"])
    assert [e.type.split(".")[2] for e in events] == ["SurveyAssigned", "SurveyAnswered"]
