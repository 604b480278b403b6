"""``binome replay`` on the assembled platform (``binome up``), run from a
second process while the platform serves and its live consumer runs.

The reported behaviour: the replay re-queued every source's whole log, so the
relay re-published it and every other consumer re-read and skipped it. The
promise now: the replay reads the event stores, applies each event once
(beside the live consumer, which keeps applying what arrives meanwhile) and
publishes nothing, so no other consumer reads anything again.
"""

from __future__ import annotations

import subprocess
import sys


from tests.support.enrollment import mentee, mentor, programme_body, wave_body
from tests.support.platform_process import REPOSITORY, PlatformProcess, auth, eventually

ORG = "org-replay"
CONSUMER = "matching-candidate-pool"
OTHER = "sessions-pair-directory"  # another consumer of enrollment's log


def candidates(platform: PlatformProcess) -> set[str]:
    rows = platform.sql("SELECT participant_id FROM matching.candidates WHERE organisation = $1", ORG)
    return {str(r["participant_id"]) for r in rows}


def every_enrollment_event_applied_once(platform: PlatformProcess) -> bool:
    (row,) = platform.sql(
        """SELECT (SELECT count(*) FROM enrollment.events) AS logged,
                  (SELECT count(*) FROM matching.applied_events WHERE consumer = $1) AS applied""",
        CONSUMER,
    )
    return row["logged"] == row["applied"]


def test_a_replay_beside_the_running_platform_applies_once_and_disturbs_no_other_consumer(
    platform: PlatformProcess,
) -> None:
    hr = auth(platform.token("hr-replay", ORG, ["hr_admin"]))
    programme = platform.post("/enrollment/v1/programmes", programme_body(), hr)
    wave = platform.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", wave_body("FR"), hr)
    enrol = f"/enrollment/v1/waves/{wave['wave_id']}/participants"
    enrolled = {platform.post(enrol, mentor(f"M-{n}"), hr)["participant_id"] for n in range(10)}
    eventually(lambda: candidates(platform) == enrolled, what="the candidates in matching's pool")
    eventually(lambda: every_enrollment_event_applied_once(platform), what="matching caught up")
    skipped_before = platform.metric("binome_events_skipped_total", consumer=OTHER, reason="duplicate") or 0

    replaying = subprocess.Popen(
        [sys.executable, "-m", "libs.cli", "replay", "matching", CONSUMER, "--batch-size", "5"],
        env={**platform.env, "BINOME_DATABASE_URL": platform.database_url, "BINOME_DEV_MODE": "true"},
        cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    while replaying.poll() is None and len(enrolled) < 30:  # the live consumer is fed meanwhile
        enrolled.add(platform.post(enrol, mentee(f"E-{len(enrolled)}"), hr)["participant_id"])
    out, err = replaying.communicate(timeout=120)
    assert replaying.returncode == 0, out + err
    assert f"{CONSUMER}: " in out and " events applied, " in out and "events/s" in err

    eventually(lambda: candidates(platform) == enrolled, what="every candidate back, and the new ones")
    eventually(lambda: every_enrollment_event_applied_once(platform), what="each event applied once")
    assert platform.sql("SELECT count(*) AS n FROM matching.dead_letters")[0]["n"] == 0
    # Nothing was published again: the other consumer of enrollment's log skipped nothing more.
    assert (platform.metric("binome_events_skipped_total", consumer=OTHER, reason="duplicate") or 0) == skipped_before
