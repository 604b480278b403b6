"""Webhooks on the assembled platform (``binome up``, dev mode): an HR admin
registers an endpoint, an event produced through another service's API
reaches a real receiver signed (verified with ``standardwebhooks``), and a
delivery due when the platform stops is sent after it starts again."""

from __future__ import annotations

from tests.support.platform_process import PlatformProcess, auth, eventually
from tests.support.webhooks import Receiver

CREATED = "binome.enrollment.ProgrammeCreated.v1"


def programme_created(receiver: Receiver, programme_id: str) -> list | None:
    """The verified deliveries of that programme's creation (None: none yet)."""
    return [r for r in receiver.of_type(CREATED) if r.event["data"]["programme_id"] == programme_id] or None


def delivery_of(platform: PlatformProcess, programme_id: str) -> dict | None:
    rows = platform.sql(
        "SELECT attempts, status FROM notifications.webhook_deliveries WHERE body->'data'->>'programme_id' = $1",
        programme_id,
    )
    return dict(rows[0]) if rows else None


def test_an_event_made_through_the_api_reaches_a_registered_endpoint_and_survives_a_restart(
    platform: PlatformProcess,
) -> None:
    hr = auth(platform.token("hr-webhooks", "org-webhooks", ["hr_admin"]))
    receiver = Receiver().start()
    try:
        endpoint = platform.post(
            "/notifications/v1/webhooks", {"url": receiver.url, "event_types": ["binome.enrollment.*"]}, hr
        )
        receiver.secrets.append(endpoint["secret"])

        programme = platform.post("/enrollment/v1/programmes", {"name": "Webhooks", "mode": "reverse"}, hr)
        got = eventually(lambda: programme_created(receiver, programme["programme_id"]), what="ProgrammeCreated pushed")
        assert got[0].event["tenant"] == "org-webhooks" and receiver.refused == []

        # Receiver down: the next delivery fails once and is due again when the platform stops.
        receiver.stop()
        second = platform.post("/enrollment/v1/programmes", {"name": "Webhooks 2", "mode": "reverse"}, hr)
        failed_once = eventually(lambda: (delivery_of(platform, second["programme_id"]) or {}).get("attempts") or None,
                                 what="a failed first attempt")
        assert failed_once == 1
        platform.stop()
        receiver.start()
        platform.launch()
        got = eventually(lambda: programme_created(receiver, second["programme_id"]), what="delivered after the restart")
        assert len(got) == 1
        eventually(lambda: delivery_of(platform, second["programme_id"])["status"] == "delivered", what="recorded")
    finally:
        receiver.stop()
