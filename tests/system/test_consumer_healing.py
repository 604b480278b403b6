"""A read model heals from a transient fault by itself, and what can never
apply is parked durably, on the assembled platform (``binome up``).

The reported fault: matching's candidate table refused writes for 5 s (a
constraint added, then dropped, from another connection). Every enrollment
event of those seconds was dead-lettered within ~150 ms and stayed missing
until a manual replay. The promise now: the consumer backs off and retries the
same batch, offsets held, until the table takes writes again; nothing is
parked. An event that can never apply (an invalid payload) is parked in
PostgreSQL and is still listed by ``GET /v1/dead-letters`` after a restart.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import orjson

from tests.support.enrollment import mentee, mentor, programme_body, wave_body
from tests.support.platform_process import REPOSITORY, PlatformProcess, auth, eventually

ORG = "org-heal"
CONSUMER = "matching-candidate-pool"


def candidates(platform: PlatformProcess) -> set[str]:
    rows = platform.sql("SELECT participant_id FROM matching.candidates WHERE organisation = $1", ORG)
    return {str(r["participant_id"]) for r in rows}


def test_a_table_refusing_writes_for_seconds_heals_by_itself_with_nothing_parked(platform: PlatformProcess) -> None:
    hr = auth(platform.token("hr-heal", ORG, ["hr_admin"]))
    programme = platform.post("/enrollment/v1/programmes", programme_body(), hr)
    wave = platform.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", wave_body("FR"), hr)
    enrol = f"/enrollment/v1/waves/{wave['wave_id']}/participants"
    enrolled = {platform.post(enrol, mentor("M-0"), hr)["participant_id"]}
    eventually(lambda: candidates(platform) == enrolled, what="the first candidate in matching's pool")

    # The fault: new candidates of this organisation are refused (existing rows unchecked).
    platform.sql(f"ALTER TABLE matching.candidates ADD CONSTRAINT refuse_{ORG.replace('-', '_')} "
                  f"CHECK (organisation <> '{ORG}') NOT VALID")
    try:
        fault_ends = time.monotonic() + 5
        while time.monotonic() < fault_ends:
            enrolled.add(platform.post(enrol, mentee(f"E-{len(enrolled)}"), hr)["participant_id"])
            time.sleep(0.2)
    finally:
        platform.sql(f"ALTER TABLE matching.candidates DROP CONSTRAINT refuse_{ORG.replace('-', '_')}")

    # Healed with no replay: every participant, each once (participant_id is the key).
    eventually(lambda: candidates(platform) == enrolled, timeout=60, what="every candidate after the fault")
    assert len(enrolled) > 5
    parked = platform.sql("SELECT event_type, reason FROM matching.dead_letters WHERE consumer = $1", CONSUMER)
    assert [dict(r) for r in parked] == []
    assert (platform.metric("binome_consumer_transient_failures_total", consumer=CONSUMER) or 0) >= 1


def invalid_enrolment_event(tenant: str) -> tuple[str, dict]:
    """An enrollment event whose payload no version of its model accepts."""
    event_id = str(uuid.uuid4())
    envelope = {
        "specversion": "1.0", "id": event_id, "source": "/binome/enrollment",
        "type": "binome.enrollment.WaveOpened.v1", "subject": str(uuid.uuid4()),
        "time": "2026-01-05T09:00:00+00:00", "datacontenttype": "application/json",
        "data": {"not_a_field_of_the_event": True}, "sequence": 1, "tenant": tenant,
    }
    return event_id, envelope


def test_an_event_that_can_never_apply_is_parked_and_survives_a_restart(platform: PlatformProcess) -> None:
    event_id, envelope = invalid_enrolment_event(ORG)
    # Written into enrollment's log and outbox from outside: the relay publishes it.
    platform.sql(
        """WITH e AS (INSERT INTO enrollment.events (event_id, stream_id, version, type, envelope)
                      VALUES ($1::uuid, $2, 1, $3, $4::jsonb) RETURNING position)
           INSERT INTO enrollment.outbox (position, topic) SELECT position, 'binome.enrollment.events' FROM e""",
        event_id, envelope["subject"], envelope["type"], orjson.dumps(envelope).decode(),
    )
    ops = auth(platform.token("ops-heal", ORG, ["ops"]))

    def listed():
        response = platform.http.get("/matching/v1/dead-letters", params={"consumer": CONSUMER}, headers=ops)
        assert response.status_code == 200, response.text
        return next((d for d in response.json()["items"] if d["event_id"] == event_id), None)

    parked = eventually(listed, timeout=60, what="the invalid event parked by matching")
    assert parked["event_type"] == "binome.enrollment.WaveOpened.v1"
    assert parked["reason"].startswith("invalid")

    platform.stop()
    platform.launch()  # same data directory: the broker starts empty, PostgreSQL keeps everything

    again = listed()
    assert again is not None and again["id"] == parked["id"]
    assert again["first_failed_at"] == parked["first_failed_at"]

    # `binome redrive` beside the running platform: it still cannot apply, so
    # it stays parked with one more attempt, and the command says so.
    redriven = subprocess.run(
        [sys.executable, "-m", "libs.cli", "redrive", CONSUMER, "--event", event_id],
        env={**platform.env, "BINOME_DATABASE_URL": platform.database_url, "BINOME_DEV_MODE": "true"},
        cwd=REPOSITORY, capture_output=True, text=True, timeout=120,
    )
    assert redriven.returncode == 1, redriven.stdout + redriven.stderr
    assert f"{event_id}: failed" in redriven.stdout
    after = listed()
    assert after["attempts"] == parked["attempts"] + 1 and after["last_failed_at"] > parked["last_failed_at"]
