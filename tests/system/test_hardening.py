"""What a reviewer of an HR system checks from outside, on the assembled
platform (issue 14): no caching or sniffing of personal data, no Server
banner, no long-lived tokens, one rate budget per client across every
service, failed authentications limited per source, /docs with no
third-party asset."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest

from tests.support.platform_process import PlatformProcess, auth, eventually

SERVICES = ("enrollment", "matching", "sessions", "evaluation", "insights")
RATE = 30
FAILURES = 3


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    env = {"BINOME_RATE_LIMIT": f"{RATE}/minute", "BINOME_AUTH_FAILURE_LIMIT": f"{FAILURES}/minute"}
    with PlatformProcess.start(tmp_path_factory.mktemp("hardened"), env=env) as running:
        yield running


def test_personal_data_is_never_cached_nor_sniffed_and_no_server_banner(platform: PlatformProcess) -> None:
    hr = auth(platform.token("hr-headers", "org-headers", ["hr_admin"], client_id="headers"))
    http = platform.http
    responses = [http.get(f"/{s}/v1/audit", headers=hr) for s in SERVICES]
    responses += [http.get(f"/{s}/v1/audit", headers={"X-Forwarded-For": "10.6.0.1"}) for s in SERVICES[:1]]  # 401
    responses.append(http.get(f"/v1/gdpr/participants/{uuid.uuid4()}/export", headers=hr))  # the root app's 404
    for response in responses:
        assert response.status_code in (200, 401, 404), response.text
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url
    for response in [*responses, http.get("/healthz"), http.get("/enrollment/docs")]:
        assert "server" not in response.headers, response.request.url


def test_access_lines_name_the_subject(platform: PlatformProcess) -> None:
    hr = auth(platform.token("hr-access-line", "org-access", ["hr_admin"], client_id="access"))
    assert platform.http.get("/sessions/v1/audit", headers={**hr, "Correlation-Id": "access-line-1"}).status_code == 200

    def access_line() -> dict | None:
        for line in platform.log_lines():
            if '"access-line-1"' in line and '"http.request"' in line:
                return json.loads(line)
        return None

    line = eventually(access_line, timeout=10, what="the access line")
    assert (line["subject"], line["service"], line["route"], line["status"]) == ("hr-access-line", "sessions", "/v1/audit", 200)


def test_a_token_living_longer_than_twelve_hours_is_refused(platform: PlatformProcess) -> None:
    long_lived = platform.token("hr-long", "org-long", ["hr_admin"], expires_in=13 * 3600)
    response = platform.http.get("/enrollment/v1/programmes", headers={**auth(long_lived), "X-Forwarded-For": "10.6.1.1"})
    assert response.status_code == 401 and "lifetime" in response.json()["detail"]
    twelve_hours = platform.token("hr-long", "org-long", ["hr_admin"], expires_in=12 * 3600)
    assert platform.http.get("/enrollment/v1/programmes", headers=auth(twelve_hours)).status_code == 200


def test_a_client_has_one_budget_across_every_service(platform: PlatformProcess) -> None:
    client = auth(platform.token("hr-budget", "org-budget", ["hr_admin"], client_id="portal"))
    statuses = [platform.http.get(f"/{SERVICES[n % 5]}/v1/audit", headers=client).status_code for n in range(RATE)]
    assert statuses == [200] * RATE
    refused = [platform.http.get(f"/{s}/v1/audit", headers=client) for s in SERVICES]
    assert [r.status_code for r in refused] == [429] * 5
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    other = auth(platform.token("hr-budget", "org-budget", ["hr_admin"], client_id="mobile"))
    assert platform.http.get("/matching/v1/audit", headers=other).status_code == 200


def test_failed_authentications_are_limited_per_source(platform: PlatformProcess) -> None:
    source = {"X-Forwarded-For": "10.6.2.1"}
    bad = {**source, "Authorization": "Bearer not-a-token"}
    statuses = [platform.http.get(f"/{SERVICES[n % 5]}/v1/audit", headers=bad).status_code for n in range(FAILURES + 2)]
    assert statuses == [401] * FAILURES + [429, 429]
    # Another address is not held back, nor is a valid token from the same one.
    assert platform.http.get("/enrollment/v1/audit", headers={"X-Forwarded-For": "10.6.2.2"}).status_code == 401
    valid = auth(platform.token("hr-source", "org-source", ["hr_admin"], client_id="source"))
    assert platform.http.get("/enrollment/v1/audit", headers={**source, **valid}).status_code == 200


def test_docs_load_no_third_party_asset(platform: PlatformProcess) -> None:
    for prefix in ("", "/enrollment"):
        page = platform.http.get(f"{prefix}/docs")
        assert page.status_code == 200
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
        urls = [a or b for a, b in assets]
        assert urls, page.text
        for url in urls:
            assert not url.startswith(("http:", "https:", "//")), url
            assert platform.http.get(url).status_code == 200, url
    assert platform.http.get("/enrollment/redoc").status_code == 404
