"""The platform starts as users start it, serves every service and stops cleanly."""

from __future__ import annotations

from tests.support.platform_process import PlatformProcess, auth


def test_every_service_answers_on_the_assembled_platform(platform: PlatformProcess) -> None:
    services = platform.http.get("/v1/services").json()["services"]
    assert {s["name"] for s in services} >= {"enrollment", "matching", "sessions", "evaluation", "insights"}
    token = platform.token("hr-smoke", "org-smoke", ["hr_admin"])
    response = platform.http.get("/enrollment/v1/programmes", headers=auth(token))
    assert response.status_code == 200, response.text
