"""GDPR in the enrollment service, on the real stack. Erasure: the global HR
admin erases a participant; their personal values are gone from the API and
the read tables, their keys are shredded, nothing else about them can change,
and the same person may enrol again as someone new."""

from __future__ import annotations

import uuid
from typing import Any
from collections.abc import AsyncIterator

import asyncpg
import pytest

from libs.auth.principal import HR_ADMIN, Principal
from libs.gdpr.personal import ERASED
from services.enrollment.service_layer.export import EnrollmentExport
from tests.support.enrollment import ORG, EnrollmentEnv, enrollment_env, mentee, mentor
from tests.support.gdpr_export import assert_export_complete

CANARY = "canary-e7b2d41f"


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EnrollmentEnv]:
    async for environment in enrollment_env(pool, tmp_path_factory.mktemp("enrollment-erasure")):
        yield environment


async def enrolled_with_canary(env: EnrollmentEnv, ref: str) -> tuple[str, str]:
    programme = await env.programme()
    wave = await env.wave(programme["programme_id"])
    body = mentee(ref, display_name=f"Ada {CANARY}", email=f"{CANARY}@example.com", motivation=f"why {CANARY}",
                  manager_ref=f"M-{CANARY}")
    participant = await env.enrol(wave["wave_id"], body)
    return wave["wave_id"], participant["participant_id"]


async def test_an_erased_participant_keeps_no_personal_value(env: EnrollmentEnv) -> None:
    wave_id, pid = await enrolled_with_canary(env, "E-ERASE-1")
    hr = env.auth("hr_admin", sub="hr-global")

    erased = await env.client.post(f"/v1/participants/{pid}:erase", headers=hr)
    assert erased.status_code == 200, erased.text
    doc = erased.json()
    assert doc["status"] == "erased"
    assert {doc[k] for k in ("display_name", "email", "motivation", "employee_ref", "manager_ref")} == {ERASED}
    assert doc["erasure"]["erased_by"]["subject"] == "hr-global"
    assert doc["profile"]["themes_wanted"]  # what is not personal stays, for the programme's figures

    row = await env.pool.fetchrow(f"SELECT * FROM {env.schema}.participants WHERE participant_id = $1::uuid", pid)
    assert CANARY not in str(dict(row))
    assert await env.vault.is_erased(uuid.UUID(pid))

    # Nothing more can happen to them, and a second erasure only shreds again.
    patch = await env.client.patch(f"/v1/participants/{pid}", json={"display_name": "Back"}, headers=hr)
    assert patch.status_code == 409
    again = await env.client.post(f"/v1/participants/{pid}:erase", headers=hr)
    assert again.status_code == 200 and again.json()["version"] == doc["version"]

    # The person, now unknown, may enrol again.
    await env.enrol(wave_id, mentee("E-ERASE-1"))


async def test_only_the_global_hr_admin_erases(env: EnrollmentEnv) -> None:
    _, pid = await enrolled_with_canary(env, "E-ERASE-2")
    committee = env.auth("regional_committee", countries=["FR"])
    assert (await env.client.post(f"/v1/participants/{pid}:erase", headers=committee)).status_code == 403
    other_org = env.auth("hr_admin", org="org-b")
    assert (await env.client.post(f"/v1/participants/{pid}:erase", headers=other_org)).status_code == 404
    got = (await env.client.get(f"/v1/participants/{pid}", headers=env.auth())).json()
    assert got["status"] == "enrolled" and got["display_name"] == f"Ada {CANARY}"


async def test_the_read_tables_rebuilt_from_the_log_stay_erased(env: EnrollmentEnv) -> None:
    from services.enrollment.bootstrap import Enrollment

    _, pid = await enrolled_with_canary(env, "E-ERASE-3")
    _, other = await enrolled_with_canary(env, "E-ERASE-4")
    hr = env.auth()
    for participant in (pid, other):
        assert (await env.client.post(f"/v1/participants/{participant}:erase", headers=hr)).status_code == 200
    await Enrollment(env.pool, env.store, env.vault).rebuild_read_tables()
    rows = await env.pool.fetch(
        f"SELECT status, doc FROM {env.schema}.participants WHERE participant_id = ANY($1::uuid[])", [pid, other]
    )
    assert [r["status"] for r in rows] == ["erased", "erased"]
    assert CANARY not in str([dict(r) for r in rows])


async def test_the_export_holds_the_profile_and_every_fact(env: EnrollmentEnv) -> None:
    _, pid = await enrolled_with_canary(env, "E-EXPORT-1")
    await env.post(f"/v1/participants/{pid}:withdraw", {"reason": f"moving on {CANARY}"})
    response = await env.client.get(f"/v1/participants/{pid}/export", headers=env.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == "enrollment" and body["participant_id"] == pid
    assert body["data"]["participant"]["display_name"] == f"Ada {CANARY}"
    assert [h["type"] for h in body["data"]["history"]] == [
        "binome.enrollment.ParticipantEnrolled.v1",
        "binome.enrollment.ParticipantWithdrew.v1",
    ]
    assert body["data"]["history"][1]["data"]["reason"] == f"moving on {CANARY}"
    # Only the global HR admin of the organisation exports.
    committee = env.auth("regional_committee", countries=["FR"])
    assert (await env.client.get(f"/v1/participants/{pid}/export", headers=committee)).status_code == 403
    other = env.auth("hr_admin", org="org-b")
    assert (await env.client.get(f"/v1/participants/{pid}/export", headers=other)).status_code == 404


async def test_the_log_holds_personal_values_sealed_and_erasure_makes_them_unreadable(env: EnrollmentEnv) -> None:
    _, pid = await enrolled_with_canary(env, "E-SEALED-1")
    stored = await env.pool.fetch(f"SELECT envelope::text FROM {env.schema}.events WHERE stream_id = $1", pid)
    assert stored and all(CANARY not in row[0] for row in stored)  # sealed at rest (and so on the wire)
    [enrolled] = await env.store.read_stream(pid)
    assert enrolled.data["display_name"] == f"Ada {CANARY}"  # opened for the service itself

    assert (await env.client.post(f"/v1/participants/{pid}:erase", headers=env.auth())).status_code == 200
    history = await env.store.read_stream(pid)
    assert [e.type for e in history][-1] == "binome.enrollment.ParticipantErased.v1"
    assert history[0].data["display_name"] == ERASED and history[0].data["email"] == ERASED
    assert CANARY not in str([e.data for e in history])


async def export_checked(env: EnrollmentEnv, pid: str) -> dict:
    """The export through the API, checked against its model and the collector's unfiltered part."""
    response = await env.client.get(f"/v1/participants/{pid}/export", headers=env.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    from services.enrollment.bootstrap import Enrollment

    unfiltered = await Enrollment(env.pool, env.store, env.vault).export(Principal("hr-1", ORG, {HR_ADMIN}), uuid.UUID(pid))
    assert unfiltered is not None
    assert_export_complete("enrollment", body, unfiltered, EnrollmentExport)
    return body["data"]


async def test_the_export_is_typed_and_lost_nothing_of_any_fact(env: EnrollmentEnv) -> None:
    """Every kind of fact and every part of the document (needs, transfers,
    withdrawal, qualification, erasure with its markers) validates against
    EnrollmentExport and keeps every key."""
    programme = await env.programme()
    fr = await env.wave(programme["programme_id"])
    de = await env.wave(programme["programme_id"], country="DE")
    pid = (await env.enrol(fr["wave_id"], mentee("E-TYPED-1", motivation=f"why {CANARY}")))["participant_id"]
    answers = [{"question_id": "priorities", "themes": ["cybersecurity"]}, {"question_id": "least_at_ease", "themes": []}]
    needs = {"answers": answers, "comments": {"priorities": CANARY}}
    await env.post(f"/v1/participants/{pid}/needs-answers", needs)
    await env.post(f"/v1/participants/{pid}:transfer", {"wave_id": de["wave_id"]})
    await env.post(f"/v1/participants/{pid}:withdraw", {"reason": f"moving on {CANARY}"})
    part = await export_checked(env, pid)
    assert part["participant"]["transfers"][0]["to_country"] == "DE"
    assert "erasure" not in part["participant"]  # absent until erased, as the read model keeps it

    assert (await env.client.post(f"/v1/participants/{pid}:erase", headers=env.auth())).status_code == 200
    part = await export_checked(env, pid)
    assert part["participant"]["erasure"]["status"] in ("pending", "completed")
    assert part["history"][0]["data"]["motivation"] == ERASED
    assert CANARY not in str(part)

    mentor_id = (await env.enrol(fr["wave_id"], mentor("E-TYPED-2")))["participant_id"]
    scores = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}
    await env.post(f"/v1/participants/{mentor_id}/qualification", scores)
    part = await export_checked(env, mentor_id)
    assert part["participant"]["qualification"]["qualified"] is True
    assert [h["type"].split(".")[2] for h in part["history"]] == ["ParticipantEnrolled", "MentorQualificationAssessed"]


async def test_a_list_shows_an_erasure_with_its_progress_on_disk(env: EnrollmentEnv) -> None:
    # The list hands stored documents to the answer as JSON text; an erased
    # person's is the one read, to add what the vault says of the erasure.
    programme = await env.programme()
    wave = await env.wave(programme["programme_id"])
    kept = await env.enrol(wave["wave_id"], mentee("E-LIST-KEPT"))
    gone = await env.enrol(wave["wave_id"], mentee("E-LIST-GONE"))
    hr = env.auth("hr_admin", sub="hr-global")
    assert (await env.client.post(f"/v1/participants/{gone['participant_id']}:erase", headers=hr)).status_code == 200
    service = f"list-test-{uuid.uuid4().hex[:8]}"
    await env.vault.register_compactor(service)

    async def erasures() -> dict[str, Any]:
        listed = await env.client.get(f"/v1/participants?wave_id={wave['wave_id']}", headers=hr)
        assert listed.status_code == 200, listed.text
        return {p["participant_id"]: p["erasure"] for p in listed.json()["items"]}

    try:
        before = await erasures()
        assert before[kept["participant_id"]] is None
        assert before[gone["participant_id"]]["status"] == "pending"
        assert before[gone["participant_id"]]["completed_at"] is None
        assert before[gone["participant_id"]]["erased_by"]["subject"] == "hr-global"

        await env.vault.mark_compacted(service, [uuid.UUID(gone["participant_id"])])
        after = await erasures()
        assert after[gone["participant_id"]]["status"] == "completed"
        assert after[gone["participant_id"]]["completed_at"] is not None
        assert after[kept["participant_id"]] is None
    finally:
        await env.pool.execute(f"DELETE FROM {env.vault.schema}.compactors WHERE service = $1", service)
