"""GDPR in the evaluation service, on the real stack: an erased
participant's free text and committed-action descriptions are dropped (the
figures results need stay), also after a rebuild from the log; a trigger
waiting for its pair keeps no personal value; a participant's export holds
its assignments, answers, own free text and committed actions, for the
global HR admin of its organisation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from libs.auth.principal import HR_ADMIN, Principal
from libs.events.contexts.enrollment import ParticipantErased, Role
from libs.eventstore.store import EventStore
from libs.gdpr.personal import ERASED
from services.evaluation.bootstrap import Evaluation
from services.evaluation.service_layer.export import EvaluationExport, Export
from tests.support.evaluation import HR, ORG, EvaluationEnv, PairIds, evaluation_env
from tests.support.gdpr_export import assert_export_complete

pytestmark = pytest.mark.integration

CANARY = "canary-e4a1-77b0"


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[EvaluationEnv]:
    async for environment in evaluation_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("evaluation-gdpr")):
        yield environment


async def tables_text(env: EvaluationEnv) -> str:
    rows = await env.pool.fetch(
        f"""SELECT t::text FROM {env.schema}.assignments t UNION ALL SELECT t::text FROM {env.schema}.deferred_triggers t
            UNION ALL SELECT t::text FROM {env.schema}.idempotency_keys t"""
    )
    return "\n".join(r[0] for r in rows)


async def answered_pair(env: EvaluationEnv, tag: str) -> PairIds:
    """A completed pair whose mentee wrote free text and committed actions
    (with the canary and ``tag``), and whose mentor answered its feedback."""
    programme = await env.programme()
    wave = await env.wave(programme, "FR", "Europe")
    pair = env.new_pair(programme, wave, "FR")
    subject, held, country = env.held(pair)
    # The session arrives before its pair: the trigger waits, without the note.
    await env.publish((subject, held.model_copy(update={"note": f"{CANARY} {tag} note"}), country))
    assert f"{CANARY} {tag}" not in await tables_text(env)
    await env.publish(env.formed(pair), env.completed(pair))

    feedback = await env.one(pair.mentee_id, "session_feedback")
    answers = {"useful": 4, "topics_covered": "yes", "comment": f"{CANARY} {tag} comment"}
    response = await env.client.post(
        f"/v1/assignments/{feedback['assignment_id']}/answers", json={"answers": answers},
        headers={**env.participant(pair.mentee_id), "Idempotency-Key": f"fb-{pair.pair_id}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    closing = await env.one(pair.mentee_id, "closing_self_assessment")
    actions = [{"description": f"{CANARY} {tag} action", "status": "started"},
               {"description": "Open a data project", "status": "planned"}]
    response = await env.answer(closing, {"new_skills": 4, "apply_at_work": 5}, actions=actions)
    assert response.status_code == 200, response.text
    mentor_feedback = await env.one(pair.mentor_id, "session_feedback")
    response = await env.answer(mentor_feedback, {"useful": 5, "topics_covered": "yes", "comment": f"mentor {tag}"})
    assert response.status_code == 200, response.text
    return pair


async def test_an_erased_participant_loses_its_free_text_but_not_the_figures(env: EvaluationEnv) -> None:
    erased, _kept = await answered_pair(env, "erased"), await answered_pair(env, "kept")
    assert f"{CANARY} erased" in await tables_text(env)
    event = ParticipantErased(
        participant_id=erased.mentee_id, programme_id=erased.programme_id, wave_id=erased.wave_id,
        country="FR", role=Role.MENTEE, actor=HR,
    )  # fmt: skip
    await env.publish((str(erased.mentee_id), event, "FR"))

    text = await tables_text(env)
    assert f"{CANARY} erased" not in text and f"{CANARY} kept" in text
    feedback = (await env.client.get(
        f"/v1/assignments/{(await env.one(erased.mentee_id, 'session_feedback'))['assignment_id']}",
        headers=env.participant(erased.mentee_id),
    )).json()  # fmt: skip
    assert feedback["free_text"] == {"comment": ERASED}
    assert {a["question_id"]: a["scale"] for a in feedback["answers"]}["useful"] == 4  # figures stay
    closing = await env.one(erased.mentee_id, "closing_self_assessment")
    rows = await env.pool.fetchrow(
        f"SELECT doc, actions_started, actions_planned FROM {env.schema}.assignments WHERE assignment_id = $1",
        uuid.UUID(closing["assignment_id"]),
    )
    assert '"description": "[erased]"' in rows["doc"] and (rows["actions_started"], rows["actions_planned"]) == (1, 1)
    assert "mentor erased" in text  # the mentor is not erased: its own text stays

    # The log still holds the text until it is sealed; a rebuild drops it again.
    await Evaluation(env.pool, EventStore(env.pool, env.schema)).rebuild_read_tables()
    text = await tables_text(env)
    assert f"{CANARY} erased" not in text and f"{CANARY} kept" in text


async def test_the_export_holds_assignments_answers_free_text_and_actions(env: EvaluationEnv) -> None:
    pair = await answered_pair(env, "export")
    url = f"/v1/participants/{pair.mentee_id}/export"
    response = await env.client.get(url, headers=env.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == "evaluation" and body["participant_id"] == str(pair.mentee_id)
    part = body["data"]
    kinds = sorted(a["kind"] for a in part["assignments"])
    assert kinds == ["closing_self_assessment", "digital_maturity", "digital_maturity", "session_feedback"]
    feedback = next(a for a in part["assignments"] if a["kind"] == "session_feedback")
    assert feedback["free_text"] == {"comment": f"{CANARY} export comment"}  # its own free text
    assert [(a["status"], a["description"]) for a in part["committed_actions"]] == [
        ("started", f"{CANARY} export action"), ("planned", "Open a data project")
    ]
    # Every field exported is declared, and none of what the service collected is lost.
    unfiltered = await Export(env.schema).collect(env.pool, Principal("hr-1", ORG, {HR_ADMIN}), pair.mentee_id)
    assert unfiltered is not None
    assert_export_complete("evaluation", body, unfiltered, EvaluationExport)
    assert (await env.client.get(url, headers=env.auth("regional_committee", countries=["FR"]))).status_code == 403
    assert (await env.client.get(url, headers=env.participant(pair.mentee_id))).status_code == 403
    assert (await env.client.get(url, headers=env.auth("hr_admin", org="org-b"))).status_code == 404
    assert (await env.client.get(f"/v1/participants/{uuid.uuid4()}/export", headers=env.auth())).status_code == 404
