"""Erasure holds on the machine itself (issue 14, point 2), on ``binome up``.

A person is enrolled with a distinct canary string in every personal field
an event declares (``personal_fields``) that the API can reach: enrolment and
profile update, needs comments, withdrawal reason, decline and dissolve
notes, the exclusion note, a cancellation reason, a held session's note, a
check-in, a free-text survey answer and committed actions. The GDPR export
carries every one of them. The global HR admin erases the person through the
API and waits until the erasure reads ``completed``. Then, after a
CHECKPOINT (every dirty page written to its file):

(a) no relation file of the embedded cluster (``base/**``, ``global/**``)
    holds any canary string, in a live row, a dead row, an index entry or
    the planner's statistics (sampled by an ANALYZE before the erasure);
(b) nothing in those files unwraps, with the region's master key, to one of
    the person's data keys, and neither the wrapped nor the raw keys appear.

The write-ahead log (``pg_wal``) is the documented exception (README, GDPR).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

from libs.events.registry import registry
from tests.support.directory import ENTERPRISE, SCIM, user
from tests.support.enrollment import mentee, mentor
from tests.support.platform_process import PlatformProcess, auth, eventually

ORG = "org-erasure"
QUALIFIED = {"case_study_score": 80, "teaching_ease": 4, "interpersonal_skills": 4, "training_completed": True}
WRAPPED_KEY_BYTES = 40  # AES key wrap of a 32-byte data key

#: Every (event type, personal field) the canary below plants through the API.
#: A personal field added to an event fails the declaration test until the
#: canary plants it, and so until erasure and export are proven for it.
PLANTED = {
    ("binome.enrollment.ParticipantEnrolled.v1", f)
    for f in ("display_name", "email", "employee_ref", "manager_ref", "motivation")
} | {
    ("binome.enrollment.ParticipantProfileUpdated.v1", f)
    for f in ("display_name", "email", "manager_ref", "motivation")
} | {
    ("binome.enrollment.NeedsAnswered.v1", "comments"),
    ("binome.enrollment.ParticipantWithdrew.v1", "reason"),
    ("binome.matching.PairDeclined.v1", "note"),
    ("binome.matching.PairDissolved.v1", "note"),
    ("binome.matching.PairExcluded.v1", "note"),
    ("binome.matching.ExclusionLifted.v1", "reason"),
    ("binome.sessions.SessionCancelled.v1", "reason"),
    ("binome.sessions.SessionHeld.v1", "note"),
    ("binome.sessions.CheckInRecorded.v1", "blockers"),
    ("binome.sessions.CheckInRecorded.v1", "next_step"),
    ("binome.evaluation.SurveyAnswered.v1", "free_text"),
    ("binome.evaluation.ActionsCommitted.v1", "descriptions"),
}


#: The directory's personal fields, planted through SCIM by the directory test below.
PLANTED_IN_THE_DIRECTORY = {
    (f"binome.directory.{event}.v1", field)
    for event in ("PersonProvisioned", "PersonUpdated")
    for field in ("identity", "manager_id")
}


def test_the_canary_plants_every_declared_personal_field() -> None:
    declared = {(t, f) for t, m in registry.models.items() for f in m.personal_fields}
    assert declared == PLANTED | PLANTED_IN_THE_DIRECTORY


class Canary:
    """One distinct value per personal field, all sharing one unique prefix."""

    def __init__(self) -> None:
        self.prefix = f"canary{uuid.uuid4().hex}"
        self.values: dict[str, str] = {}

    def __call__(self, field: str) -> str:
        return self.values.setdefault(field, f"{self.prefix}-{field}")


class Api:
    def __init__(self, platform: PlatformProcess) -> None:
        self.platform = platform
        self.http = platform.http
        self.hr = auth(platform.token("hr-erasure", ORG, ["hr_admin"]))

    def as_participant(self, participant_id: str) -> dict[str, str]:
        return auth(self.platform.token(participant_id, ORG, ["participant"]))

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Every POST carries an Idempotency-Key: its stored response (which
        may show personal values) must go with the person too."""
        headers = dict(headers or self.hr)
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        response = self.http.request(method, path, json=body, headers=headers)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def row(self, sql: str, *args: Any) -> Any:
        """The first row of ``sql`` once there is one (a projection caught up)."""
        return eventually(lambda: next(iter(self.platform.sql(sql, *args)), None), what=sql)


def proposal(api: Api, wave_id: str) -> str:
    return api.call("POST", "/matching/v1/runs", {"wave_ids": [wave_id]})["pairs"][0]["pair_id"]


def plant(api: Api, canary: Canary) -> str:
    """The canary mentee, with a canary in every personal field; its id."""
    call = api.call
    programme = call("POST", "/enrollment/v1/programmes", {"name": "Erasure programme", "mode": "reverse"})
    wave = call("POST", f"/enrollment/v1/programmes/{programme['programme_id']}/waves", {
        "name": "FR wave", "region": "Europe", "country": "FR", "committee": "committee-fr",
        "starts_on": "2026-01-05", "ends_on": "2099-06-30", "target_pairs": 30,
    })  # fmt: skip
    enrol = f"/enrollment/v1/waves/{wave['wave_id']}/participants"
    person = call("POST", enrol, mentee(
        canary("employee_ref"), display_name=canary("display_name"), email=f"{canary('email')}@example.com",
        motivation=canary("motivation"), manager_ref=canary("manager_ref"),
        themes_wanted=[{"theme": "data_ai", "level": 2}],
    ))  # fmt: skip
    pid = person["participant_id"]
    me = api.as_participant(pid)
    call("PATCH", f"/enrollment/v1/participants/{pid}", {
        "display_name": canary("new_display_name"), "email": f"{canary('new_email')}@example.com",
        "motivation": canary("new_motivation"), "manager_ref": canary("new_manager_ref"),
    })  # fmt: skip
    needs = {"answers": [{"question_id": "priorities", "themes": ["cybersecurity"]},
                         {"question_id": "least_at_ease", "themes": []}],
             "comments": {"priorities": canary("needs_comment")}}
    call("POST", f"/enrollment/v1/participants/{pid}/needs-answers", needs)
    mentors = []
    for level in (4, 3, 2, 1):
        body = mentor(f"R-{uuid.uuid4().hex[:8]}", themes_offered=[{"theme": "data_ai", "level": level}], capacity=1)
        mentors.append(call("POST", enrol, body)["participant_id"])
        call("POST", f"/enrollment/v1/participants/{mentors[-1]}/qualification", QUALIFIED)
    for participant in (pid, *mentors):
        api.row("SELECT 1 FROM matching.candidates WHERE participant_id = $1 AND matchable", uuid.UUID(participant))

    # Matching: an exclusion, a declined proposal, a dissolved pair, then the pair that meets.
    excluded = call(
        "POST", "/matching/v1/exclusions", {"mentee_id": pid, "mentor_id": mentors[-1], "note": canary("exclusion")}
    )
    call("POST", f"/matching/v1/pairs/{proposal(api, wave['wave_id'])}:decline", {"note": canary("decline")}, me)
    dissolved = proposal(api, wave["wave_id"])
    call("POST", f"/matching/v1/pairs/{dissolved}:confirm")
    call("POST", f"/matching/v1/pairs/{dissolved}:dissolve", {"reason": "no_chemistry", "note": canary("dissolve")})
    pair = proposal(api, wave["wave_id"])
    call("POST", f"/matching/v1/pairs/{pair}:confirm")
    call("POST", f"/matching/v1/exclusions/{excluded['exclusion_id']}:lift", {"reason": canary("lift")})

    # Sessions: one held (it starts in a few seconds: no clock is moved), one cancelled, a check-in.
    api.row("SELECT 1 FROM sessions.pairs WHERE pair_id = $1 AND status = 'formed'", uuid.UUID(pair))
    starts = [datetime.now(UTC) + timedelta(seconds=4), datetime.now(UTC) + timedelta(hours=48)]
    sessions = [
        call("POST", f"/sessions/v1/pairs/{pair}/sessions", {
            "starts_at": at.isoformat(), "duration_minutes": 45, "format": "remote", "planned_topics": ["data_ai"],
        }, me)["session_id"]
        for at in starts
    ]  # fmt: skip
    call("POST", f"/sessions/v1/sessions/{sessions[1]}:cancel", {"reason": canary("cancel")}, me)
    time.sleep(max(0.0, (starts[0] - datetime.now(UTC)).total_seconds() + 0.5))
    held = {"actual_minutes": 45, "preparation_minutes": 10, "topics_covered": ["data_ai"], "note": canary("held")}
    call("POST", f"/sessions/v1/sessions/{sessions[0]}:mark-held", held, me)
    check_in = {"mood": 4, "blockers": canary("blockers"), "next_step": canary("next_step")}
    call("POST", f"/sessions/v1/pairs/{pair}/check-ins", check_in, me)

    # Evaluation: a free-text answer, then the closing actions.
    assigned = """SELECT assignment_id FROM evaluation.assignments
                  WHERE participant_id = $1 AND kind = $2 AND status = 'open'"""
    feedback = api.row(assigned, uuid.UUID(pid), "session_feedback")[0]
    answers = {"useful": 4, "topics_covered": "yes", "comment": canary("feedback")}
    call("POST", f"/evaluation/v1/assignments/{feedback}/answers", {"answers": answers}, me)
    call("POST", f"/matching/v1/pairs/{pair}:complete")
    closing = api.row(assigned, uuid.UUID(pid), "closing_self_assessment")[0]
    body = {"answers": {"new_skills": 4, "apply_at_work": 4},
            "actions": [{"description": canary("action"), "status": "started"}]}
    call("POST", f"/evaluation/v1/assignments/{closing}/answers", body, me)

    call("POST", f"/enrollment/v1/participants/{pid}:withdraw", {"reason": canary("withdraw")})
    return pid


# -- looking at the files ------------------------------------------------------------


def relation_files(data_dir: Path) -> Iterator[Path]:
    """Every file of every relation of the cluster (tables, indexes, TOAST, catalogs)."""
    root = data_dir / "postgres"
    for top in ("base", "global"):
        yield from (p for p in sorted((root / top).rglob("*")) if p.is_file())


def checkpoint(platform: PlatformProcess) -> None:
    """Every dirty page written to its relation file."""
    platform.sql("CHECKPOINT")


def canaries_on_disk(data_dir: Path, canary: Canary) -> dict[str, list[str]]:
    """For each canary field found, the files holding it."""
    found: dict[str, list[str]] = {}
    needles = {field: value.encode() for field, value in canary.values.items()}
    for path in relation_files(data_dir):
        content = path.read_bytes()
        if canary.prefix.encode() not in content:
            continue
        for field, needle in needles.items():
            if needle in content:
                found.setdefault(field, []).append(str(path.relative_to(data_dir)))
    return found


def manager_traces(data_dir: Path, managers: list[uuid.UUID]) -> list[str]:
    """The files holding one of the manager ids, as text or as a uuid column's bytes."""
    needles = [n for m in managers for n in (str(m).encode(), m.bytes)]
    return [str(p.relative_to(data_dir)) for p in relation_files(data_dir) if any(n in p.read_bytes() for n in needles)]


def data_keys_of(platform: PlatformProcess, participant_id: str) -> list[tuple[str, bytes]]:
    """(region, wrapped key) of every data key the participant owns."""
    rows = platform.sql(
        "SELECT region, wrapped_key FROM binome_vault.data_keys WHERE $1 = ANY(owners)", uuid.UUID(participant_id)
    )
    return [(r["region"], bytes(r["wrapped_key"])) for r in rows]


def master_key(data_dir: Path, region: str) -> bytes:
    """The region's master key: in dev mode, generated under <data_dir>/keys."""
    return (data_dir / "keys" / f"vault-{region}.key").read_bytes()


def unwrappable(content: bytes, master: bytes, wanted: set[bytes]) -> int:
    """How many 40-byte windows of ``content`` unwrap with ``master`` to a ``wanted`` key."""
    hits = 0
    for offset in range(len(content) - WRAPPED_KEY_BYTES + 1):
        window = content[offset : offset + WRAPPED_KEY_BYTES]
        try:
            key = aes_key_unwrap(master, window)
        except InvalidUnwrap:
            continue
        hits += key in wanted
    return hits


def key_traces(platform: PlatformProcess, keys: list[tuple[str, bytes, bytes]]) -> list[str]:
    """Where an erased data key can still be found or unwrapped from."""
    data_dir = platform.data_dir
    traces = []
    vault_files = set(vault_relation_files(platform))
    for path in relation_files(data_dir):
        content = path.read_bytes()
        name = str(path.relative_to(data_dir))
        for region, wrapped, raw in keys:
            if wrapped in content or raw in content:
                traces.append(f"key bytes in {name}")
            if path in vault_files and unwrappable(content, master_key(data_dir, region), {raw}):
                traces.append(f"unwrappable key in {name}")
    return sorted(set(traces))


def vault_relation_files(platform: PlatformProcess) -> list[Path]:
    """The files of the vault's relations as they are now (tables, indexes, TOAST)."""
    rows = platform.sql(
        """SELECT pg_relation_filepath(c.oid) FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname IN ('binome_vault', 'pg_toast') AND pg_relation_filepath(c.oid) IS NOT NULL
             AND (n.nspname = 'binome_vault' OR c.oid IN (
                 SELECT reltoastrelid FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace
                 WHERE tn.nspname = 'binome_vault'))"""
    )
    root = platform.data_dir / "postgres"
    files = []
    for (relative,) in rows:
        files += [p for p in sorted(root.glob(f"{relative}*")) if p.is_file()]
    return files


# -- the test ------------------------------------------------------------------------


def test_an_erased_person_is_gone_from_every_database_file(platform: PlatformProcess) -> None:
    api = Api(platform)
    canary = Canary()
    pid = plant(api, canary)

    # Each value went where it could, and the export carries every one.
    export = str(api.call("GET", f"/v1/gdpr/participants/{pid}/export"))
    assert [field for field, value in canary.values.items() if value not in export] == []
    platform.sql("ANALYZE")  # as autovacuum would: planner statistics sample the values
    checkpoint(platform)
    found = canaries_on_disk(platform.data_dir, canary)
    assert found  # the scan sees what is there
    statistics = "postgres/" + platform.sql("SELECT pg_relation_filepath('pg_statistic')")[0][0]
    assert any(statistics in files for files in found.values()), found
    wrapped = data_keys_of(platform, pid)
    assert wrapped
    keys = [(region, w, aes_key_unwrap(master_key(platform.data_dir, region), w)) for region, w in wrapped]
    assert key_traces(platform, keys)  # and keys where they are

    erased = api.call("POST", f"/enrollment/v1/participants/{pid}:erase")
    assert erased["status"] == "erased"

    def completed() -> dict | None:
        erasure = api.call("GET", f"/enrollment/v1/participants/{pid}")["erasure"]
        return erasure if erasure["status"] == "completed" else None

    assert eventually(completed, timeout=120, what="erasure completed")["completed_at"]
    checkpoint(platform)
    assert canaries_on_disk(platform.data_dir, canary) == {}
    assert key_traces(platform, keys) == []
    assert parked_anywhere(platform) == []  # every service applied the erasure and what followed


def test_erasing_a_member_of_a_pair_that_met_dissolves_it_everywhere(platform: PlatformProcess) -> None:
    """The erasure shreds the pair's key (owned by both members, sealing what
    they wrote together): the pair must still end downstream of matching
    (sessions, evaluation) and no service may park anything."""
    api = Api(platform)
    call = api.call
    programme = call("POST", "/enrollment/v1/programmes", {"name": "Erased pair programme", "mode": "reverse"})
    wave = call("POST", f"/enrollment/v1/programmes/{programme['programme_id']}/waves", {
        "name": "FR pair wave", "region": "Europe", "country": "FR", "committee": "committee-fr",
        "starts_on": "2026-01-05", "ends_on": "2099-06-30", "target_pairs": 30,
    })  # fmt: skip
    enrol = f"/enrollment/v1/waves/{wave['wave_id']}/participants"
    body = mentee(f"E-{uuid.uuid4().hex[:8]}", themes_wanted=[{"theme": "data_ai", "level": 2}])
    pid = call("POST", enrol, body)["participant_id"]
    body = mentor(f"R-{uuid.uuid4().hex[:8]}", themes_offered=[{"theme": "data_ai", "level": 3}], capacity=1)
    partner = call("POST", enrol, body)["participant_id"]
    call("POST", f"/enrollment/v1/participants/{partner}/qualification", QUALIFIED)
    for participant in (pid, partner):
        api.row("SELECT 1 FROM matching.candidates WHERE participant_id = $1 AND matchable", uuid.UUID(participant))
    pair = proposal(api, wave["wave_id"])
    call("POST", f"/matching/v1/pairs/{pair}:confirm")
    api.row("SELECT 1 FROM sessions.pairs WHERE pair_id = $1 AND status = 'formed'", uuid.UUID(pair))
    api.row("SELECT 1 FROM evaluation.ref_pairs WHERE pair_id = $1 AND status = 'formed'", uuid.UUID(pair))
    # The pair met: what they wrote is sealed with the pair's key, which the erasure shreds.
    check_in = {"mood": 4, "blockers": "Time.", "next_step": "Read the paper."}
    call("POST", f"/sessions/v1/pairs/{pair}/check-ins", check_in, api.as_participant(pid))
    assert platform.sql("SELECT 1 FROM binome_vault.data_keys WHERE key_id = $1", uuid.UUID(pair))

    call("POST", f"/enrollment/v1/participants/{pid}:erase")
    api.row("SELECT 1 FROM matching.pairs WHERE pair_id = $1 AND status = 'dissolved'", uuid.UUID(pair))
    api.row("SELECT 1 FROM sessions.pairs WHERE pair_id = $1 AND status = 'dissolved'", uuid.UUID(pair))
    api.row("SELECT 1 FROM evaluation.ref_pairs WHERE pair_id = $1 AND status = 'dissolved'", uuid.UUID(pair))
    dissolved = api.call("GET", f"/matching/v1/pairs/{pair}")
    assert dissolved["status"] == "dissolved"

    def completed() -> bool:
        return api.call("GET", f"/enrollment/v1/participants/{pid}")["erasure"]["status"] == "completed"

    eventually(completed, timeout=120, what="erasure completed")  # every service applied it
    assert parked_anywhere(platform) == []
    # No key the erased person owns was made after the erasure.
    assert data_keys_of(platform, pid) == []


def test_an_erased_directory_person_is_gone_from_every_database_file(platform: PlatformProcess) -> None:
    """The same promise for a person an HR system provisioned through SCIM:
    every identity field and the manager reference, provisioned then
    updated, gone from the database files once the directory erasure is
    compacted."""
    canary = Canary()
    org = f"org-directory-{uuid.uuid4().hex[:6]}"
    scim = {**auth(platform.token("hr-connector", org, ["provisioning"])), "Accept": SCIM}
    hr = auth(platform.token("hr-directory", org, ["hr_admin"]))
    # A manager reference is a User's id (a UUID): its traces are looked for as text and as bytes.
    managers = [uuid.uuid4() for _ in range(2)]
    body = user(f"{canary('user_name')}@example.com", manager=str(managers[0]))
    body |= {"externalId": canary("external_id"), "displayName": canary("display_name"),
             "name": {"givenName": canary("given_name"), "familyName": canary("family_name")}}
    body[ENTERPRISE]["employeeNumber"] = canary("employee_number")
    created = platform.http.post("/scim/v2/Users", json=body, headers=scim)
    assert created.status_code == 201, created.text
    person = created.json()
    body |= {"displayName": canary("new_display_name"), "title": canary("title")}
    body[ENTERPRISE]["manager"] = {"value": str(managers[1])}
    replaced = platform.http.put(
        f"/scim/v2/Users/{person['id']}", json=body, headers={**scim, "If-Match": person["meta"]["version"]}
    )
    assert replaced.status_code == 200, replaced.text
    platform.sql("ANALYZE")
    checkpoint(platform)
    assert canaries_on_disk(platform.data_dir, canary)  # the scan sees what is there
    assert manager_traces(platform.data_dir, managers)

    erased = platform.http.post(f"/directory/v1/people/{person['id']}:erase", headers=hr)
    assert erased.status_code == 200, erased.text

    def gone() -> bool:
        checkpoint(platform)
        return canaries_on_disk(platform.data_dir, canary) == {} and manager_traces(platform.data_dir, managers) == []

    eventually(gone, timeout=120, interval=2, what="the directory person gone from the files")
    assert data_keys_of(platform, person["id"]) == []
    assert parked_anywhere(platform) == []


def parked_anywhere(platform: PlatformProcess) -> list[tuple[str, str, str]]:
    """(schema, event type, reason) of every dead letter of every service."""
    schemas = platform.sql("SELECT table_schema FROM information_schema.tables WHERE table_name = 'dead_letters'")
    parked = []
    for (schema,) in schemas:
        rows = platform.sql(f'SELECT event_type, reason FROM "{schema}".dead_letters')
        parked += [(schema, r["event_type"], r["reason"]) for r in rows]
    return parked
