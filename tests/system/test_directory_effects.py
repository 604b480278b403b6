"""The provisioning scenario of issue 18 on the assembled platform (``binome
up`` as a subprocess), every step through the public HTTP APIs: an HR system
provisions 50 people with managers through ``/scim/v2``; HR enrols some by
employee reference; a change of department reaches the participant as a
directory-caused profile event; a change of manager gives matching a new
reporting line (transitive: a mentor two levels under the mentee is excluded,
then paired once moved under another executive); a leaver deactivated
mid-wave withdraws, their pair ends ("left the organisation") and the
committee sees it in pair health; reactivated, they are not re-enrolled by
themselves but may be.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.directory import ENTERPRISE, SCIM, user
from tests.support.platform_process import PlatformProcess, auth, eventually

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
QUALIFIED = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}
VPS, LEADS_PER_VP, STAFF = 4, 2, 37  # with the CEO: 50 people


def enrolment(role: str, employee_ref: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "role": role,
        "employee_ref": employee_ref,
        "motivation": "Learn from each other.",
        "tenure_years": 12 if role == "mentee" else 1,
        "learner_profile": "experiential",
        "intentions": ["find_digital_profiles"] if role == "mentee" else ["understand_businesses"],
    }
    if role == "mentee":
        body["themes_wanted"] = [{"theme": "data_ai", "level": 1}]
    else:
        body["themes_offered"] = [{"theme": "data_ai", "level": 4}]
    return body


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


class Scenario:
    def __init__(self, platform: PlatformProcess, http: httpx.Client) -> None:
        self.platform, self.http = platform, http
        self.org = f"org-prov-{uuid.uuid4().hex[:6]}"
        self.scim = {**auth(platform.token("hr-connector", self.org, ["provisioning"], client_id="workday")),
                     "Accept": SCIM}
        self.hr = auth(platform.token("hr-1", self.org, ["hr_admin"]))
        self.committee = auth(platform.token("committee-fr", self.org, ["regional_committee"], ["FR"]))
        self.ids: dict[str, str] = {}  # employee number -> SCIM id

    def ok(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = self.http.request(method, path, json=body, headers=headers or self.hr)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def provision(self, number: str, manager: str | None, **binome: Any) -> None:
        body = user(f"{number.lower()}@example.com", manager=self.ids[manager] if manager else None, **binome)
        self.ids[number] = self.ok("POST", "/scim/v2/Users", body, self.scim)["id"]

    def scim_patch(self, number: str, *operations: dict[str, Any]) -> None:
        self.ok("PATCH", f"/scim/v2/Users/{self.ids[number]}", patch(*operations), self.scim)

    def sql_value(self, query: str, *args: Any) -> Any:
        rows = self.platform.sql(query, *args)
        return rows[0][0] if rows else None


def test_provisioning_scenario(platform: PlatformProcess) -> None:
    with platform.http as http:
        s = Scenario(platform, http)
        tag = s.org.split("-")[-1].upper()
        ceo = f"{tag}-CEO"
        vps = [f"{tag}-VP{i}" for i in range(VPS)]
        leads = [f"{tag}-TL{i}" for i in range(VPS * LEADS_PER_VP)]
        staff = [f"{tag}-S{i:02d}" for i in range(STAFF)]

        # -- 50 people with managers, through /scim/v2 --------------------------------------
        s.provision(ceo, None, jobLevel=18)
        for vp in vps:
            s.provision(vp, ceo, jobLevel=15)
        for i, lead in enumerate(leads):
            s.provision(lead, vps[i // LEADS_PER_VP], jobLevel=9)
        for i, person in enumerate(staff):
            s.provision(person, leads[i % len(leads)], jobLevel=3)
        assert len(s.ids) == 50
        listed = s.ok("GET", "/scim/v2/Users", headers=s.scim)
        assert listed["totalResults"] == 50
        eventually(lambda: s.sql_value("SELECT count(*) FROM enrollment.directory_people WHERE organisation = $1",
                                       s.org) == 50 or None, what="enrollment's copy of the directory")
        eventually(lambda: s.sql_value("SELECT count(*) FROM matching.reporting_lines WHERE organisation = $1",
                                       s.org) == 50 or None, what="matching's reporting lines")

        # -- enrol some by employee reference ---------------------------------------------
        programme = s.ok("POST", "/enrollment/v1/programmes", {"name": "Reverse 2026", "mode": "reverse"})
        wave = s.ok("POST", f"/enrollment/v1/programmes/{programme['programme_id']}/waves", {
            "name": "FR wave", "region": "Europe", "country": "FR", "committee": "committee-fr",
            "starts_on": "2026-01-05", "ends_on": "2026-06-30", "target_pairs": 30})["wave_id"]
        from_directory = f"/enrollment/v1/waves/{wave}/participants:from-directory"
        vp = s.ok("POST", from_directory, enrolment("mentee", vps[0]))
        assert vp["display_name"] == f"Person {vps[0]}" and vp["profile"]["job_level"] == 15
        assert vp["manager_ref"] == ceo and vp["profile"]["department"] == "Finance"
        # staff[0] reports to leads[0], who reports to vps[0]: the mentee is two levels above.
        mentor = s.ok("POST", from_directory, enrolment("mentor", staff[0]))
        s.ok("POST", f"/enrollment/v1/participants/{mentor['participant_id']}/qualification", QUALIFIED)
        unknown = http.post(from_directory, json=enrolment("mentee", f"{tag}-NOBODY"), headers=s.hr)
        assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.employee_ref"

        def pool_ready() -> bool | None:
            n = s.sql_value("SELECT count(*) FROM matching.candidates WHERE organisation = $1 AND matchable", s.org)
            return n == 2 or None

        eventually(pool_ready, what="matching's candidate pool")

        # -- the whole chain: no pair between the VP and someone under their team lead -----
        run = s.ok("POST", "/matching/v1/runs", {"wave_ids": [wave]})
        assert run["pairs"] == [], run
        assert {u["participant_id"]: u["code"] for u in run["unmatched"]}[vp["participant_id"]] == "no_feasible_partner"

        # -- a change of department and of manager -----------------------------------------
        s.scim_patch(staff[0],
                     {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Digital Office"},
                     {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": s.ids[leads[-1]]})

        def moved() -> dict | None:
            doc = s.ok("GET", f"/enrollment/v1/participants/{mentor['participant_id']}")
            return doc if doc["profile"]["department"] == "Digital Office" else None

        assert eventually(moved, what="the directory's change on the participant")["version"] > mentor["version"]
        causes = s.platform.sql(
            "SELECT envelope->'data'->>'cause' AS cause FROM enrollment.events WHERE stream_id = $1 AND type LIKE '%ProfileUpdated%'",
            mentor["participant_id"],
        )
        assert [r["cause"] for r in causes] == ["directory"]
        new_manager = uuid.UUID(s.ids[leads[-1]])
        eventually(lambda: s.sql_value("SELECT manager_id FROM matching.reporting_lines WHERE person_id = $1",
                                       uuid.UUID(s.ids[staff[0]])) == new_manager or None,
                   what="matching's new reporting line")
        # Now under leads[-1] -> vps[-1] -> the CEO: nobody above them is the mentee.
        run = s.ok("POST", "/matching/v1/runs", {"wave_ids": [wave]})
        assert [(p["mentee_id"], p["mentor_id"]) for p in run["pairs"]] == [
            (vp["participant_id"], mentor["participant_id"])]
        pair_id = run["pairs"][0]["pair_id"]
        s.ok("POST", f"/matching/v1/pairs/{pair_id}:confirm")

        # -- a leaver, mid-wave ------------------------------------------------------------
        s.scim_patch(vps[0], {"op": "replace", "path": "active", "value": False})

        def withdrawn() -> dict | None:
            doc = s.ok("GET", f"/enrollment/v1/participants/{vp['participant_id']}", headers=s.committee)
            return doc if doc["status"] == "withdrawn" else None

        left = eventually(withdrawn, what="the leaver's withdrawal")["withdrawal"]
        assert left["reason"] == "left the organisation" and left["cause"] == "left_organisation"

        def dissolved() -> dict | None:
            pair = s.ok("GET", f"/matching/v1/pairs/{pair_id}", headers=s.committee)
            return pair if pair["status"] == "dissolved" else None

        assert eventually(dissolved, what="the pair's end")["ended"]["reason"] == "left_company"

        def health() -> dict | None:
            response = http.get(f"/insights/v1/pairs/{pair_id}/health", headers=s.committee)
            return response.json() if response.status_code == 200 and response.json()["status"] == "ended" else None

        seen = eventually(health, what="the committee's pair health")
        assert seen["reasons"][0]["code"] == "dissolved" and "left_company" in str(seen["reasons"][0])

        # -- re-activated: nothing comes back by itself, re-enrolment works ------------------
        s.scim_patch(vps[0], {"op": "replace", "path": "active", "value": True})
        eventually(lambda: s.sql_value("SELECT active FROM enrollment.directory_people WHERE person_id = $1",
                                       uuid.UUID(s.ids[vps[0]])) or None, what="the reactivation")
        assert s.ok("GET", f"/enrollment/v1/participants/{vp['participant_id']}")["status"] == "withdrawn"
        assert s.ok("GET", f"/matching/v1/pairs/{pair_id}")["status"] == "dissolved"
        again = s.ok("POST", from_directory, enrolment("mentee", vps[0]))
        assert again["participant_id"] != vp["participant_id"] and again["status"] == "enrolled"
