"""Mail on the assembled platform: ``binome up`` as a subprocess with
``BINOME_SMTP_URL`` pointing at a real SMTP server in the test process
(aiosmtpd). A session scheduled through the API reaches both members with
its calendar invite, and a mail server that is down when the session is
scheduled delays the messages without losing or duplicating them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.enrollment import mentee, mentor
from tests.support.mailbox import Mailbox, invite_of, subject_of
from tests.support.matching import QUALIFIED
from tests.support.platform_process import PlatformProcess, auth, eventually

ORG = "org-mail"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[PlatformProcess]:
    env = {"BINOME_SMTP_URL": mailbox.url, "BINOME_MAIL_FROM": "binome@example.org"}
    with PlatformProcess.start(tmp_path_factory.mktemp("platform"), env=env) as running:
        yield running


def test_a_session_scheduled_through_the_api_is_mailed_once_after_a_mail_server_outage(
    platform: PlatformProcess, mailbox: Mailbox
) -> None:
    hr = auth(platform.token("hr-mail", ORG, ["hr_admin"]))

    def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = platform.http.request(method, path, json=body, headers=headers or hr)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    programme = call("POST", "/enrollment/v1/programmes", {"name": "Mail programme", "mode": "reverse"})
    wave = call("POST", f"/enrollment/v1/programmes/{programme['programme_id']}/waves", {
        "name": "DE wave", "region": "Europe", "country": "DE", "committee": "committee-de",
        "starts_on": "2026-01-05", "ends_on": "2027-06-30", "target_pairs": 3,
    })  # fmt: skip
    enrol = f"/enrollment/v1/waves/{wave['wave_id']}/participants"
    ref = uuid.uuid4().hex[:6]
    people = {
        "mentee": call("POST", enrol, mentee(f"E-{ref}", email=f"e-{ref}@example.com", languages=["de", "en"],
                                             time_zone="Europe/Berlin"))["participant_id"],
        "mentor": call("POST", enrol, mentor(f"M-{ref}", email=f"m-{ref}@example.com", languages=["de", "en"],
                                             time_zone="Europe/Berlin"))["participant_id"],
    }
    call("POST", f"/enrollment/v1/participants/{people['mentor']}/qualification", QUALIFIED)
    for participant in people.values():
        eventually(lambda p=participant: platform.sql(
            "SELECT 1 FROM matching.candidates WHERE participant_id = $1 AND matchable", uuid.UUID(p)) or None,
            what="pool")
    pair = call("POST", "/matching/v1/runs", {"wave_ids": [wave["wave_id"]]})["pairs"][0]["pair_id"]
    call("POST", f"/matching/v1/pairs/{pair}:confirm")
    eventually(lambda: platform.sql("SELECT 1 FROM sessions.pairs WHERE pair_id = $1 AND status = 'formed'",
                                    uuid.UUID(pair)) or None, what="pair in sessions")
    eventually(lambda: mailbox.matching(to=f"e-{ref}@example.com", kind="pair_formed") or None, what="pair mail")

    mailbox.stop()  # the mail server goes down
    try:
        starts = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        me = auth(platform.token(people["mentee"], ORG, ["participant"]))
        session = call("POST", f"/sessions/v1/pairs/{pair}/sessions", {
            "starts_at": starts.isoformat(), "duration_minutes": 45, "format": "remote", "planned_topics": [],
        }, me)  # fmt: skip
        eventually(lambda: platform.sql(
            "SELECT 1 FROM notifications.messages WHERE kind = 'session_scheduled' AND attempts > 0"
            " AND status = 'queued'") or None, what="a refused try")
    finally:
        mailbox.start()  # and comes back

    for to in (f"e-{ref}@example.com", f"m-{ref}@example.com"):
        mail = eventually(lambda t=to: mailbox.matching(to=t, kind="session_scheduled") or None, timeout=90, what=to)
        assert len(mail) == 1
        assert subject_of(mail[0]).startswith("Sitzung mit Person "), subject_of(mail[0])
        calendar = invite_of(mail[0])
        (event,) = calendar.walk("VEVENT")
        assert str(calendar["METHOD"]) == "REQUEST"
        assert str(event["UID"]) == f"session-{session['session_id']}@binome" and int(event["SEQUENCE"]) == 0
        assert event.decoded("DTSTART") == starts
    # Delivered once each, bodies dropped; the HR delivery log shows it.
    log = call("GET", "/notifications/v1/messages?kind=session_scheduled")["items"]
    assert [m["status"] for m in log] == ["delivered", "delivered"] and max(m["attempts"] for m in log) >= 2
    assert platform.sql("SELECT count(*) FROM notifications.messages WHERE body IS NOT NULL AND status = 'delivered'")[0][0] == 0
    assert all(len(mailbox.matching(to=t, kind="session_scheduled")) == 1
               for t in (f"e-{ref}@example.com", f"m-{ref}@example.com"))
