"""``binome demo`` end to end: a real platform (every service, real
PostgreSQL, a real broker) served over real HTTP on a free port, the demo run
against it at a small size, and the cross-service flow checked through the
public APIs: pairs formed in matching got their pre-questionnaire in
evaluation, held sessions got feedback surveys, completed pairs got their
post-questionnaires, the waves' maturity deltas are the ones the answers
give, insights shows the rollout, and the pictures are valid files."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import uuid
from datetime import datetime
from statistics import fmean
from xml.etree import ElementTree

import httpx
import pytest
import uvicorn
from rich.console import Console

from libs.auth.devkeys import mint
from libs.demo import Options, run_demo
from libs.runtime.platform import Platform
from libs.settings import Settings
from services import SERVICES
from tests.support.databases import fresh_database

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield  # the test runner owns the signals


@contextlib.asynccontextmanager
async def served_platform(database_url: str, bootstrap: str, data_dir):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        data_dir=data_dir,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        consumer_session_timeout_ms=1000,
        consumer_fetch_max_wait_ms=50,
        relay_poll_interval_s=0.05,
        dev_mode=True,  # not fully embedded here (the test's database and broker): dev mode brings the dev clock
        port=port,
    )
    platform = await Platform.start(settings, SERVICES)
    server = _Server(uvicorn.Config(platform.asgi_app(), log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
        await platform.shutdown()


async def test_demo_drives_a_rollout_through_every_service(database_url: str, kafka_bootstrap: str, tmp_path) -> None:
    async with fresh_database(database_url, "demo") as url, served_platform(url, kafka_bootstrap, tmp_path) as base_url:
        hr = {"Authorization": f"Bearer {mint('check-hr', 'demo-group', ['hr_admin'], data_dir=tmp_path)}"}
        async with httpx.AsyncClient(base_url=base_url, headers=hr, timeout=60) as http:
            # The dev clock: forward only, for the dev_clock role alone (not even the HR admin).
            mover = {"Authorization": f"Bearer {mint('check-clock', 'demo-group', ['dev_clock'], data_dir=tmp_path)}"}
            before = (await http.get("/v1/dev/clock", headers=mover)).json()
            back = await http.post("/v1/dev/clock:advance", json={"to": "2001-01-01T00:00:00+00:00"}, headers=mover)
            assert back.status_code == 422 and back.json()["errors"][0]["field"] == "body.to"
            assert (await http.post("/v1/dev/clock:advance", json={"seconds": -5}, headers=mover)).status_code == 422
            participant = mint("someone", "demo-group", ["participant"], data_dir=tmp_path)
            for other in (participant, mint("check-ops", "demo-group", ["ops"], data_dir=tmp_path)):
                denied = await http.post("/v1/dev/clock:advance", json={"seconds": 5},
                                         headers={"Authorization": f"Bearer {other}"})
                assert denied.status_code == 403
            assert (await http.post("/v1/dev/clock:advance", json={"seconds": 5})).status_code == 403  # hr_admin

            output = io.StringIO()
            options = Options(
                base_url=base_url, data_dir=tmp_path, out=tmp_path / "out", seed=11, countries=3, mentors=12,
                mentees=20, weeks=6, second_wave_week=3, wave_size=5, k_anonymity=3, wait_timeout_s=60,
            )
            result = await run_demo(options, Console(file=output, width=200, force_terminal=False))
            printed = output.getvalue()

            after = (await http.get("/v1/dev/clock", headers=mover)).json()
            assert after["offset_seconds"] >= before["offset_seconds"] + 6 * 7 * 86400  # six simulated weeks

            pid = result.programme_id

            async def every(path: str, **params) -> list[dict]:
                items, cursor = [], None
                while True:
                    page = (await http.get(path, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})})).json()
                    items += page["items"]
                    if not (cursor := page.get("next_cursor")):
                        return items

            pairs = await every("/matching/v1/pairs", programme_id=pid)
            assignments = await every("/evaluation/v1/assignments", programme_id=pid)
            held = await every("/sessions/v1/sessions", programme_id=pid, status="held")

    formed = [p for p in pairs if p["formed_at"]]
    assert len(formed) == len(result.pairs) == result.counts["pairs formed"] > 0
    by_pair: dict[str, list[dict]] = {}
    for a in assignments:
        by_pair.setdefault(a["pair_id"], []).append(a)

    # Pairs formed in matching got their pre-questionnaire in evaluation.
    for p in formed:
        assert any(a["kind"] == "digital_maturity" and a["phase"] == "pre" for a in by_pair[p["pair_id"]]), p

    # Held sessions (sessions) got feedback surveys for both members (evaluation).
    assert len(held) == result.counts["sessions held"] > 0
    feedback = {(a["session_id"], a["respondent"]) for a in assignments if a["kind"] == "session_feedback"}
    for s in held:
        assert {(s["session_id"], "mentee"), (s["session_id"], "mentor")} <= feedback, s
        # Events take the platform's time: marked held after its (simulated) start.
        assert datetime.fromisoformat(s["held"]["at"]) >= datetime.fromisoformat(s["starts_at"]), s

    # Completed pairs got post-questionnaires, closing self-assessments and the mentor's questionnaire.
    completed = [p for p in pairs if p["status"] == "completed"]
    assert len(completed) == result.counts["pairs completed"] > 0
    for p in completed:
        kinds = {(a["kind"], a["phase"], a["respondent"]) for a in by_pair[p["pair_id"]]}
        assert {("digital_maturity", "post", "mentee"), ("closing_self_assessment", "closing", "mentee"),
                ("mentor_questionnaire", "closing", "mentor")} <= kinds, kinds

    # Dissolved and re-paired: the story's turbulence reached matching.
    assert sum(p["status"] == "dissolved" for p in pairs) == result.counts["pairs dissolved"] > 0
    assert result.counts["matching runs"] > len([w for w in result.waves if w.start_week == 0])

    # A wave's maturity change is the change of the means of the answers the mentees gave.
    shown = 0
    for group in result.results["wave"]["groups"]:
        delta = group["maturity"]["delta"]
        answered = [p for p in result.pairs if p.wave.wave_id == group["group"] and p.pre and p.post]
        assert delta["respondents"] == len(answered)
        if delta["withheld"]:
            assert len(answered) < 3
            continue
        pre = fmean(fmean(p.pre.values()) for p in answered)
        post = fmean(fmean(p.post.values()) for p in answered)
        assert delta["change_of_means_percent"] == round((post - pre) / pre * 100, 1)
        shown += 1
    assert shown >= 1

    # Insights shows the rollout: the programme row agrees with the other services.
    programme = result.rollout["programme"][0]
    assert programme["pairs_formed"] == len(formed)
    assert programme["pairs_completed"] == len(completed)
    assert programme["sessions_held"] == len(held)
    assert programme["enrolled"] == 32
    assert {row["country"] for row in result.rollout["country"]} == {"FR", "DE", "GB"}
    assert result.network["measures"]["pairs"] == len(formed)

    # The pictures are valid files, in the directory the demo printed.
    assert set(result.files) >= {"network.svg", "network.png", "rollout.svg", "rollout.png"}
    for name, path in result.files.items():
        data = path.read_bytes()
        if name.endswith(".png"):
            assert data.startswith(PNG_MAGIC), name
        elif name.endswith(".svg"):
            assert ElementTree.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg", name
    assert str(result.out_dir) in printed.replace("\n", "")
    for heading in ("Rollout dashboard", "Pairs at risk", "Cross-silo network", "Digital maturity"):
        assert heading in printed

    # People heard from Binome: the demo says how many messages and invites, and
    # where; with no mail server they are .eml files in <data dir>/mail/ (a few
    # more by now: reminders fall due while the platform still runs).
    mail = result.notifications
    eml = sorted((tmp_path / "mail").glob("*.eml"))
    assert mail["queued"] == 0 and len(eml) >= mail["delivered"] > 0
    assert 0 < mail["invites"] < mail["delivered"]
    assert sum(b"text/calendar" in path.read_bytes() for path in eml) >= mail["invites"]
    assert mail["delivered_to"] == str(tmp_path / "mail")
    assert f"Notifications: {mail['delivered']} messages sent, {mail['invites']} with a calendar invite" in printed
    assert str(tmp_path / "mail") in printed.replace("\n", "")
