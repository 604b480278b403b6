"""Every /v1 request of the assembled platform leaves an audit record.

Under ``binome up`` each service is mounted under ``/<service>``; the trail
must still record each request of each service — allowed, denied (401, 403),
invalid (422) — with actor, organisation, roles, route template, status,
correlation id and time, and so must the platform's own GDPR export (its
trail: the ``binome_platform`` schema) and the erasure. A source sending bad tokens
is recorded once a minute, not once per request.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support.enrollment import mentee, programme_body, wave_body
from tests.support.audit import audit_rows
from tests.support.platform_process import PlatformProcess, auth

#: A list route of each service, readable by the global HR admin, not by ops.
LIST_ROUTES = {
    "enrollment": "/v1/programmes",
    "matching": "/v1/pairs",
    "sessions": "/v1/sessions",
    "evaluation": "/v1/assignments",
    "insights": "/v1/pair-health",
}


def call(platform: PlatformProcess, method: str, path: str, *, token: str | None = None, source: str, **kw: Any):
    """One request with a fresh correlation id, from ``source`` (the address a proxy forwards)."""
    correlation_id = f"audit-{uuid.uuid4()}"
    headers = {"Correlation-Id": correlation_id, "X-Forwarded-For": source, **(auth(token) if token else {})}
    with platform.http as http:
        response = http.request(method, path, headers=headers, **kw)
    return response, correlation_id


@pytest.mark.parametrize("service", sorted(LIST_ROUTES))
def test_each_kind_of_request_of_each_mounted_service_is_recorded(platform: PlatformProcess, service: str) -> None:
    org = f"org-audit-{service}"
    hr = platform.token(f"hr-{service}", org, ["hr_admin"], client_id="hr-portal")
    ops = platform.token(f"ops-{service}", org, ["ops"])
    route = f"/{service}{LIST_ROUTES[service]}"
    source = f"10.14.{sorted(LIST_ROUTES).index(service)}.1"
    expected = {}
    for token, params, status in ((hr, {}, 200), (None, {}, 401), (ops, {}, 403), (hr, {"limit": 0}, 422)):
        response, correlation_id = call(platform, "GET", route, token=token, params=params, source=source)
        assert response.status_code == status, response.text
        expected[correlation_id] = status

    rows = audit_rows(platform, service, list(expected))
    assert {c: r["status"] for c, r in rows.items()} == expected
    template = f"GET {LIST_ROUTES[service]}"
    for correlation_id, row in rows.items():
        assert row["action"] == template and row["at"] is not None
        decision = {200: "allowed", 401: "denied", 403: "denied", 422: "invalid"}[expected[correlation_id]]
        assert row["decision"] == decision
        if expected[correlation_id] == 401:
            assert row["subject"] is None and row["organisation"] is None
        else:
            assert row["organisation"] == org
            assert row["subject"] in (f"hr-{service}", f"ops-{service}")
            assert row["roles"] == (["ops"] if row["subject"].startswith("ops") else ["hr_admin"])

    # The HR admin reads its organisation's part of it through the API, on the mounted app.
    page = platform.http.get(f"/{service}/v1/audit", headers=auth(hr)).json()
    assert {e["correlation_id"] for e in page["items"]} >= {c for c, s in expected.items() if s != 401}


def test_the_gdpr_export_and_the_erasure_are_recorded(platform: PlatformProcess) -> None:
    org = "org-audit-gdpr"
    hr = platform.token("hr-gdpr", org, ["hr_admin"])
    http = platform.http
    programme = http.post("/enrollment/v1/programmes", json=programme_body(), headers=auth(hr)).json()
    wave = http.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", json=wave_body(), headers=auth(hr))
    wave = wave.json()
    person = http.post(f"/enrollment/v1/waves/{wave['wave_id']}/participants", json=mentee("E-audit"), headers=auth(hr))
    pid = person.json()["participant_id"]

    export, export_id = call(platform, "GET", f"/v1/gdpr/participants/{pid}/export", token=hr, source="10.14.9.1")
    assert export.status_code == 200, export.text
    denied, denied_id = call(platform, "GET", f"/v1/gdpr/participants/{pid}/export", source="10.14.9.2")
    assert denied.status_code == 401
    erase, erase_id = call(platform, "POST", f"/enrollment/v1/participants/{pid}:erase", token=hr, source="10.14.9.1")
    assert erase.status_code == 200, erase.text

    platform_rows = audit_rows(platform, "binome_platform", [export_id, denied_id])
    assert platform_rows[export_id]["action"] == "GET /v1/gdpr/participants/{participant_id}/export"
    assert platform_rows[export_id]["subject"] == "hr-gdpr" and platform_rows[export_id]["organisation"] == org
    assert platform_rows[export_id]["decision"] == "allowed"
    assert json.loads(platform_rows[export_id]["object"]) == {"participant_id": pid}
    assert platform_rows[denied_id]["status"] == 401
    trail = platform.http.get("/v1/audit", headers=auth(hr)).json()["items"]  # the platform's own, through its API
    assert export_id in {e["correlation_id"] for e in trail}
    erased = audit_rows(platform, "enrollment", [erase_id])[erase_id]
    assert erased["action"] == "POST /v1/participants/{participant_id}:erase"
    assert (erased["subject"], erased["organisation"], erased["status"]) == ("hr-gdpr", org, 200)


def test_failed_authentications_are_recorded_once_per_source_per_minute(platform: PlatformProcess) -> None:
    route = "/enrollment/v1/programmes"
    ids = [call(platform, "GET", route, token="not-a-token", source="10.14.20.1")[1] for _ in range(5)]
    other = call(platform, "GET", route, source="10.14.20.2")[1]
    hr = platform.token("hr-flood", "org-audit-flood", ["hr_admin"])
    last = call(platform, "GET", route, token=hr, source="10.14.20.1")[1]  # recorded: it is not anonymous
    audit_rows(platform, "enrollment", [ids[0], other, last])
    rows = audit_rows(platform, "enrollment", [*ids, other], expect=2)
    assert other in rows
    assert [i for i in ids if i in rows] == ids[:1]
