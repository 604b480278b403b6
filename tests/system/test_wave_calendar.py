"""Waves close and end by themselves on the platform clock, on ``binome up``
(issue 19): a committee opens a wave with a closing day and a last day and
forms a pair; the dev clock is moved past the closing day (enrolment
closes), then, with the platform stopped, past the last day: the platform
started again ends the wave, matching completes its pair, evaluation assigns
the pair's closing surveys, and the events say the calendar did it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tests.support.enrollment import mentee, mentor, programme_body
from tests.support.platform_process import PlatformProcess, auth, eventually

ORG = "org-calendar"
QUALIFIED = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}
CALENDAR = {"subject": "service:enrollment", "client_id": "wave-calendar"}


def test_a_wave_closes_and_ends_on_its_dates_and_its_pair_gets_closing_surveys(tmp_path) -> None:
    env = {"BINOME_SCHEDULER_INTERVAL_S": "0.5"}
    with PlatformProcess.start(tmp_path, env=env) as platform:
        hr = auth(platform.token("hr-calendar", ORG, ["hr_admin"]))
        mover = auth(platform.token("clock-calendar", ORG, ["dev_clock"]))
        now = datetime.fromisoformat(platform.http.get("/v1/dev/clock", headers=mover).json()["now"])
        today = now.date()
        closes_on, ends_on = today + timedelta(days=3), today + timedelta(days=20)

        programme = platform.post("/enrollment/v1/programmes", programme_body(), hr)
        wave = platform.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", {
            "name": "FR wave", "region": "Europe", "country": "FR", "committee": "committee-fr",
            "starts_on": (today + timedelta(days=1)).isoformat(), "ends_on": ends_on.isoformat(),
            "enrolment_closes_on": closes_on.isoformat(), "target_pairs": 1,
        }, hr)  # fmt: skip
        wave_id = wave["wave_id"]
        enrol = f"/enrollment/v1/waves/{wave_id}/participants"
        person = platform.post(enrol, mentee(f"E-{uuid.uuid4().hex[:6]}", themes_wanted=[{"theme": "data_ai", "level": 2}]), hr)
        pid = person["participant_id"]
        needs = {"answers": [{"question_id": "priorities", "themes": ["data_ai"]},
                             {"question_id": "least_at_ease", "themes": []}]}
        platform.post(f"/enrollment/v1/participants/{pid}/needs-answers", needs, hr)
        coach = platform.post(enrol, mentor(f"R-{uuid.uuid4().hex[:6]}", themes_offered=[{"theme": "data_ai", "level": 4}]), hr)
        platform.post(f"/enrollment/v1/participants/{coach['participant_id']}/qualification", QUALIFIED, hr)
        def present(sql: str, *args: object) -> None:
            eventually(lambda: platform.sql(sql, *args) or None, what=sql)

        present("SELECT 1 FROM matching.waves WHERE wave_id = $1", uuid.UUID(wave_id))
        for participant in (pid, coach["participant_id"]):
            present("SELECT 1 FROM matching.candidates WHERE participant_id = $1 AND matchable", uuid.UUID(participant))
        run = platform.post("/matching/v1/runs", {"wave_ids": [wave_id]}, hr)
        pair_id = run["pairs"][0]["pair_id"]
        platform.post(f"/matching/v1/pairs/{pair_id}:confirm", {}, hr)

        def wave_doc() -> dict:
            return platform.http.get(f"/enrollment/v1/waves/{wave_id}", headers=hr).json()

        assert wave_doc()["status"] == "open"
        platform.post("/v1/dev/clock:advance", {"to": f"{closes_on.isoformat()}T00:00:01+00:00"}, mover)
        closed = eventually(lambda: (d := wave_doc())["status"] == "enrolment_closed" and d, what="enrolment closed")
        assert closed["updated_by"] == CALENDAR
        late = platform.http.post(enrol, json=mentee("E-late"), headers=hr)
        assert late.status_code == 409

        # The last day passes while no platform runs: the next one ends the wave.
        platform.stop()
        offset = datetime.fromisoformat(f"{(ends_on + timedelta(days=1)).isoformat()}T00:00:01+00:00") - datetime.now(now.tzinfo)
        (platform.data_dir / "dev-clock").write_text(f"{offset.total_seconds()}\n")
        platform.launch()
        ended = eventually(lambda: (d := wave_doc())["status"] == "ended" and d, what="wave ended")
        assert ended["updated_by"] == CALENDAR

        pair = eventually(lambda: (p := platform.http.get(f"/matching/v1/pairs/{pair_id}", headers=hr).json())
                          ["status"] == "completed" and p, what="pair completed")
        assert pair["ended"]["by"] == CALENDAR
        surveys = eventually(lambda: platform.sql(
            "SELECT kind FROM evaluation.assignments WHERE pair_id = $1 AND phase IN ('post', 'closing')",
            uuid.UUID(pair_id)) or None, what="closing surveys")
        assert {r["kind"] for r in surveys} >= {"closing_self_assessment"}
        types = [r["type"] for r in platform.sql(
            "SELECT envelope->>'type' AS type FROM enrollment.events WHERE stream_id = $1 ORDER BY version", wave_id)]
        assert types == [f"binome.enrollment.{t}.v1" for t in ("WaveOpened", "WaveEnrolmentClosed", "WaveEnded")]

