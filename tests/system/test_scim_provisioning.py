"""SCIM 2.0 on the assembled platform (``binome up`` as a subprocess), at
``/scim/v2`` where provisioning connectors expect it.

* Compliance: scim2-tester runs every check it has against the live
  ``/scim/v2`` with a provisioning client's token and reports no failure.
  What it checks (its tags): ``discovery`` — ``/ServiceProviderConfig``,
  ``/ResourceTypes`` (list and each one), ``/Schemas`` (list and each one),
  that what they publish is valid and consistent; ``crud:create`` — POST
  /Users with random values of every writable attribute (core, enterprise
  and Binome extensions) answers 201 and the resource; ``crud:read`` — GET by
  id, list, queries with ``attributes``/``excludedAttributes``; ``crud:update``
  — PUT replacing every attribute, PATCH ``add``/``replace``/``remove`` on
  every attribute path, reading the result back; ``crud:delete`` — DELETE
  then 404; ``misc`` — an unknown URL and id answer SCIM 404s.
* A provisioning scenario through the platform's own URL: people with
  managers, a filter, a manager change, a leaver, every request audited in
  the directory's trail, the events in the directory's store.
"""

from __future__ import annotations

import uuid

import httpx
from scim2_tester import Status, check_server

from tests.support.directory import ENTERPRISE, SCIM, user
from tests.support.platform_process import PlatformProcess, auth, eventually
from tests.support.scim_client import HttpxSCIMClient

FAILED = {Status.ERROR, Status.CRITICAL}
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def provisioning(platform: PlatformProcess, org: str) -> dict[str, str]:
    token = platform.token("hr-connector", org, ["provisioning"], client_id="workday")
    return {**auth(token), "Accept": SCIM}


def test_scim2_tester_reports_no_failure(platform: PlatformProcess) -> None:
    http = httpx.Client(base_url=f"{platform.base_url}/scim/v2", headers=provisioning(platform, "org-scim-tester"),
                        timeout=30)
    with http:
        results = check_server(HttpxSCIMClient(http))
    ran = {tag for r in results if r.status is not Status.SKIPPED for tag in r.tags}
    assert {"discovery", "crud:create", "crud:read", "crud:update", "crud:delete", "misc"} <= ran, ran
    failures = [f"{r.title}: {r.reason}" for r in results if r.status in FAILED]
    assert failures == [], "\n".join(failures)
    assert len(results) > 50


def test_provisioning_through_the_platform(platform: PlatformProcess) -> None:
    org = f"org-scim-{uuid.uuid4().hex[:6]}"
    headers = {**provisioning(platform, org), "Correlation-Id": f"scim-{uuid.uuid4()}"}
    with platform.http as http:
        ceo = http.post("/scim/v2/Users", json=user("ceo@example.com"), headers=headers).json()
        cfo = http.post("/scim/v2/Users", json=user("cfo@example.com", manager=ceo["id"]), headers=headers).json()
        staff = [
            http.post("/scim/v2/Users", json=user(f"s{i}@example.com", manager=cfo["id"]), headers=headers)
            for i in range(5)
        ]
        assert [r.status_code for r in staff] == [201] * 5
        assert staff[0].headers["location"] == f"{platform.base_url}/scim/v2/Users/{staff[0].json()['id']}"

        reports = http.get("/scim/v2/Users", params={"filter": f'{ENTERPRISE}:manager.value eq "{cfo["id"]}"'},
                           headers=headers).json()
        assert reports["totalResults"] == 5

        first = staff[0].json()
        moved = http.patch(f"/scim/v2/Users/{first['id']}", headers={**headers, "If-Match": first["meta"]["version"]},
                           json={"schemas": [PATCH], "Operations": [
                               {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": ceo["id"]},
                               {"op": "replace", "path": "active", "value": False}]})
        assert moved.status_code == 200, moved.text
        assert moved.json()["active"] is False and moved.headers["etag"] == 'W/"3"'
        stale = http.delete(f"/scim/v2/Users/{first['id']}", headers={**headers, "If-Match": first["meta"]["version"]})
        assert stale.status_code == 412 and stale.headers["content-type"] == SCIM

        # The same routes through the directory's own mount; another organisation sees none of it.
        assert http.get(f"/directory/v2/Users/{ceo['id']}", headers=headers).status_code == 200
        stranger = provisioning(platform, "org-scim-stranger")
        assert http.get(f"/scim/v2/Users/{ceo['id']}", headers=stranger).status_code == 404

    events = platform.sql(
        "SELECT type FROM directory.events WHERE stream_id = $1 ORDER BY version", first["id"]
    )
    assert [e["type"] for e in events] == [
        "binome.directory.PersonProvisioned.v1",
        "binome.directory.PersonUpdated.v1",
        "binome.directory.PersonDeactivated.v1",
    ]
    wanted = {"POST /v2/Users", "GET /v2/Users", "PATCH /v2/Users/{user_id}", "DELETE /v2/Users/{user_id}",
              "GET /v2/Users/{user_id}"}

    def audited() -> set[str] | None:  # a record is written after its response is sent
        rows = platform.sql("SELECT action, status, organisation, client_id FROM directory.audit_log "
                            "WHERE correlation_id = $1", headers["Correlation-Id"])
        actions = {r["action"] for r in rows}
        return {(r["action"], r["status"], r["organisation"], r["client_id"]) for r in rows} if wanted <= actions else None

    records = eventually(audited, timeout=10, what="the SCIM requests in the directory's audit trail")
    assert ("DELETE /v2/Users/{user_id}", 412, org, "workday") in records
    assert ("PATCH /v2/Users/{user_id}", 200, org, "workday") in records
