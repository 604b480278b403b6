"""Bulk import of a wave's participants on the real stack: a 1,500-row CSV
with a few bad rows reports exactly those rows and imports nothing; with
mode=valid_only it imports the rest; uploading the same file again creates
nothing more."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from tests.support.enrollment import EnrollmentEnv, enrollment_env, mentee, mentor

pytestmark = pytest.mark.integration

ROWS = 1500
COLUMNS = [
    "employee_ref",
    "role",
    "display_name",
    "email",
    "motivation",
    "entity",
    "business_function",
    "job_level",
    "tenure_years",
    "birth_year",
    "languages",
    "time_zone",
    "learner_profile",
    "intentions",
    "themes_wanted",
    "themes_offered",
    "sessions_per_month",
    "capacity",
    "manager_ref",
]
#: line in the file (header = line 1) -> (column to spoil, bad value, field reported)
BAD: dict[int, tuple[str, str, str]] = {
    57: ("email", "nobody-at-example", "email"),
    402: ("themes_wanted", "cooking:2", "themes_wanted.0.theme"),
    777: ("capacity", "2", "capacity"),  # a mentee with a capacity
    1203: ("employee_ref", "IMP-00010", "employee_ref"),  # the same person as line 12
    1388: ("job_level", "senior", "job_level"),
    1499: ("role", "", "role"),  # missing
}


def row(n: int) -> dict[str, str]:
    """The n-th person (line n + 2): every seventh a mentor."""
    role = "mentor" if n % 7 == 0 else "mentee"
    return {
        "employee_ref": f"IMP-{n:05d}",
        "role": role,
        "display_name": f"Person {n}",
        "email": f"person{n}@example.com",
        "motivation": "Understand how my teams could use data, and share what I know.",
        "entity": ["Acme France", "Acme Retail", "Acme Services"][n % 3],
        "business_function": ["finance", "marketing", "operations", "it"][n % 4],
        "job_level": "3" if role == "mentor" else str(8 + n % 6),
        "tenure_years": str(n % 30),
        "birth_year": "1998" if role == "mentor" else str(1960 + n % 25),
        "languages": "fr|en",
        "time_zone": "Europe/Paris",
        "learner_profile": ["experiential", "theoretical", "mixed"][n % 3],
        "intentions": "understand_businesses" if role == "mentor" else "find_digital_profiles|support_junior_career",
        "themes_wanted": "" if role == "mentor" else "data_ai:1|cybersecurity:2",
        "themes_offered": "data_ai:4|e_commerce:3" if role == "mentor" else "",
        "sessions_per_month": "2",
        "capacity": str(1 + n % 3) if role == "mentor" else "",
        "manager_ref": f"MGR-{n % 40:03d}",
    }


def spreadsheet() -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, delimiter=";", lineterminator="\r\n")  # as European Excel writes
    writer.writeheader()
    for n in range(ROWS):
        values = row(n)
        line = n + 2
        if line in BAD:
            column, value, _ = BAD[line]
            if column == "capacity" and values["role"] == "mentor":
                raise AssertionError("spoil a mentee's capacity")
            values[column] = value
        writer.writerow(values)
    return out.getvalue().encode("utf-8-sig")


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EnrollmentEnv]:
    async for environment in enrollment_env(pool, tmp_path_factory.mktemp("enrollment-import")):
        yield environment


async def upload(
    env: EnrollmentEnv, wave_id: str, body: bytes, content_type: str = "text/csv", query: str = "", **headers: str
) -> Any:
    return await env.client.post(
        f"/v1/waves/{wave_id}/participants:import{query}",
        content=body,
        headers={**env.auth(), "content-type": content_type, **headers},
    )


async def participants(env: EnrollmentEnv, wave_id: str) -> int:
    return await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.participants WHERE wave_id = $1", wave_id)


async def test_a_spreadsheet_of_1500_rows(env: EnrollmentEnv) -> None:
    programme = (await env.programme(settings={"languages": ["fr", "en"]}))["programme_id"]
    wave = (await env.wave(programme, "FR", target_pairs=200))["wave_id"]
    body = spreadsheet()
    before = await env.count_events()

    # 1. All or nothing: exactly the bad rows, by line and field; nothing stored.
    started = time.perf_counter()
    rejected = await upload(env, wave, body)
    checked_in = time.perf_counter() - started
    assert rejected.status_code == 422, rejected.text
    problem = rejected.json()
    assert problem["type"] == "urn:binome:problem:import-rejected" and problem["rows"] == ROWS
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [
        (line, field) for line, (_, _, field) in sorted(BAD.items())
    ]
    duplicate = next(e for e in problem["errors"] if e["line"] == 1203)
    assert "line 12" in duplicate["message"]
    assert await env.count_events() == before and await participants(env, wave) == 0

    # 2. The valid rows only.
    started = time.perf_counter()
    response = await upload(env, wave, body, query="?mode=valid_only")
    imported_in = time.perf_counter() - started
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["imported"], report["already_imported"]) == (ROWS, ROWS - len(BAD), 0)
    assert [e["line"] for e in report["errors"]] == sorted(BAD)
    assert await participants(env, wave) == ROWS - len(BAD)
    assert await env.count_events() == before + ROWS - len(BAD)
    print(f"\n1,500-row CSV: checked in {checked_in:.2f}s, imported in {imported_in:.2f}s")
    assert imported_in < 15  # in practice about a second

    # 3. The same file again, either way: nothing more.
    again = (await upload(env, wave, body, query="?mode=valid_only")).json()
    assert (again["imported"], again["already_imported"]) == (0, ROWS - len(BAD))
    assert (await upload(env, wave, body)).status_code == 422  # the bad rows are still bad
    assert await env.count_events() == before + ROWS - len(BAD)

    # What was imported is what the file said, and lists page through all of it.
    funnel = (await env.client.get(f"/v1/waves/{wave}/funnel", headers=env.auth())).json()
    mentors = sum(1 for n in range(ROWS) if n % 7 == 0 and n + 2 not in BAD)
    assert funnel["mentors"]["enrolled"] == mentors and funnel["mentees"]["enrolled"] == ROWS - len(BAD) - mentors
    seen: dict[str, dict] = {}
    url = f"/v1/participants?wave_id={wave}&limit=200"
    while url:
        page = (await env.client.get(url, headers=env.auth())).json()
        for item in page["items"]:
            assert item["employee_ref"] not in seen  # no participant twice
            seen[item["employee_ref"]] = item
        url = f"/v1/participants?wave_id={wave}&limit=200&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert len(seen) == ROWS - len(BAD)
    first = seen["IMP-00000"]  # the file's first row
    assert first["employee_ref"] == "IMP-00000" and first["role"] == "mentor" and first["profile"]["capacity"] == 1
    assert first["profile"]["themes_offered"] == [{"theme": "data_ai", "level": 4}, {"theme": "e_commerce", "level": 3}]
    assert first["profile"]["generation_band"] == "gen_z" and first["import_id"] == report["file_sha256"]

    # A corrected file for two rejected rows, plus a person the first file
    # imported already: the new rows import, the duplicate is named.
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([row(55), {**row(775), "capacity": ""}, row(10)])  # lines 57 and 777 fixed; line 12 again
    corrected = (await upload(env, wave, out.getvalue().encode(), query="?mode=valid_only")).json()
    assert corrected["imported"] == 2
    [error] = corrected["errors"]
    assert (error["line"], error["field"]) == (4, "employee_ref") and "already enrolled" in error["message"]


async def test_json_import_and_file_level_errors(env: EnrollmentEnv) -> None:
    programme = (await env.programme(settings={"languages": ["fr", "en"]}))["programme_id"]
    wave = (await env.wave(programme, "FR"))["wave_id"]
    rows = [mentee("J-1"), mentor("J-2"), {**mentee("J-3"), "salary": 1}, "not a row"]
    rejected = await upload(env, wave, orjson.dumps(rows), "application/json")
    assert [(e["line"], e["field"]) for e in rejected.json()["errors"]] == [(3, "salary"), (4, "row")]
    assert await participants(env, wave) == 0
    report = (
        await upload(env, wave, orjson.dumps({"participants": rows[:2]}), "application/json; charset=utf-8")
    ).json()
    assert report["imported"] == 2 and report["errors"] == []

    unknown = await upload(env, wave, b"employee_ref,salary\nX,1\n")
    assert unknown.status_code == 422 and unknown.json()["errors"] == [
        {"line": 1, "field": "salary", "message": unknown.json()["errors"][0]["message"], "type": "rule"}
    ]
    assert (await upload(env, wave, b"<xml/>", "application/xml")).status_code == 415
    assert (await upload(env, wave, b"\xff\xfe", "text/csv")).status_code == 422

    # An Idempotency-Key works here too, and a closed wave takes no import.
    body = orjson.dumps([mentee("J-4")])
    first = await upload(env, wave, body, "application/json", **{"Idempotency-Key": "import-1"})
    retry = await upload(env, wave, body, "application/json", **{"Idempotency-Key": "import-1"})
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    await env.post(f"/v1/waves/{wave}:close-enrolment", {})
    assert (await upload(env, wave, orjson.dumps([mentee("J-5")]), "application/json")).status_code == 409
