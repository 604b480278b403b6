"""Odd input on the assembled platform is a 4xx naming the field, never a 500
(issue 14): dates out of any programme's range, a month of year 0, a CSV cell
larger than the csv module's own limit, an oversized body on the root app."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from tests.support.enrollment import mentee, programme_body, wave_body
from tests.support.audit import audit_rows
from tests.support.platform_process import PlatformProcess, auth

ORG = "org-odd"


@pytest.fixture(scope="module")
def hr(platform: PlatformProcess) -> dict[str, str]:
    return auth(platform.token("hr-odd", ORG, ["hr_admin"]))


@pytest.fixture(scope="module")
def wave(platform: PlatformProcess, hr: dict[str, str]) -> str:
    programme = platform.http.post("/enrollment/v1/programmes", json=programme_body(), headers=hr).json()
    created = platform.http.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", json=wave_body(), headers=hr)
    assert created.status_code == 201, created.text
    return created.json()["wave_id"]


def fields(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("starts_on", "ends_on", "field"),
    [("0001-01-01", "2026-06-30", "body.starts_on"), ("2026-01-05", "9999-12-31", "body.ends_on")],
)
def test_wave_dates_out_of_range(platform: PlatformProcess, hr: dict[str, str], starts_on, ends_on, field) -> None:
    programme = platform.http.post("/enrollment/v1/programmes", json=programme_body(), headers=hr).json()
    body = wave_body(starts_on=starts_on, ends_on=ends_on)
    response = platform.http.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", json=body, headers=hr)
    assert fields(response) == [field]
    waves = platform.http.get("/enrollment/v1/waves", params={"programme_id": programme["programme_id"]}, headers=hr)
    assert waves.json()["items"] == []  # nothing changed


@pytest.mark.parametrize("starts_at", ["9999-12-31T23:30:00+00:00", "0001-01-01T00:00:00+05:00"])
def test_session_starts_out_of_range(platform: PlatformProcess, hr: dict[str, str], starts_at: str) -> None:
    body = {"starts_at": starts_at, "duration_minutes": 45, "format": "remote", "planned_topics": ["data_ai"]}
    scheduled = platform.http.post(f"/sessions/v1/pairs/{uuid.uuid4()}/sessions", json=body, headers=hr)
    assert fields(scheduled) == ["body.starts_at"]
    moved = platform.http.post(f"/sessions/v1/sessions/{uuid.uuid4()}:move", json={"starts_at": starts_at}, headers=hr)
    assert fields(moved) == ["body.starts_at"]


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "2026-13"])
def test_budget_months_out_of_range(platform: PlatformProcess, hr: dict[str, str], month: str) -> None:
    assert fields(platform.http.get("/sessions/v1/budgets", params={"month": month}, headers=hr)) == ["query.month"]
    mentor_budget = platform.http.get(f"/sessions/v1/mentors/{uuid.uuid4()}/budget", params={"month": month}, headers=hr)
    assert fields(mentor_budget) == ["query.month"]


def test_query_dates_out_of_range(platform: PlatformProcess, hr: dict[str, str]) -> None:
    assert fields(platform.http.get("/sessions/v1/sessions", params={"from": "0001-01-01"}, headers=hr)) == ["query.from"]
    since = platform.http.get("/enrollment/v1/audit", params={"since": "9999-12-31T23:59:59+00:00"}, headers=hr)
    assert fields(since) == ["query.since"]


def test_a_csv_cell_over_the_csv_module_limit_is_a_bad_row(platform: PlatformProcess, hr: dict[str, str], wave: str) -> None:
    def cells(person: dict) -> dict[str, str]:
        def cell(value) -> str:  # type: ignore[no-untyped-def]
            if isinstance(value, list):
                return "|".join(f"{v['theme']}:{v['level']}" if isinstance(v, dict) else v for v in value)
            return str(value)

        return {column: cell(value) for column, value in person.items()}

    motivations = ["fine", "x" * 140_000, "multi\nline " + "y" * 140_000, "fine too"]
    rows = [cells(mentee(f"ODD-{n}", motivation=m)) for n, m in enumerate(motivations)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    response = platform.http.post(
        f"/enrollment/v1/waves/{wave}/participants:import",
        content=out.getvalue().encode(),
        headers={**hr, "content-type": "text/csv"},
    )
    assert response.status_code == 422, response.text
    assert [(e["line"], e["field"]) for e in response.json()["errors"]] == [(3, "motivation"), (4, "motivation")]
    listed = platform.http.get("/enrollment/v1/participants", params={"wave_id": wave}, headers=hr).json()
    assert listed["items"] == []


def test_the_root_app_enforces_the_body_limit(platform: PlatformProcess, hr: dict[str, str]) -> None:
    mover = auth(platform.token("clock-odd", ORG, ["dev_clock"]))
    huge = b'{"seconds": 1, "pad": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    headers = {**mover, "content-type": "application/json", "Correlation-Id": f"odd-{uuid.uuid4()}"}
    response = platform.http.post("/v1/dev/clock:advance", content=huge, headers=headers)
    assert response.status_code == 413 and response.headers["content-type"].startswith("application/problem+json")
    assert platform.http.get("/v1/dev/clock", headers=mover).json()["offset_seconds"] == 0
    # The refusal is in the platform's audit trail too.
    rows = audit_rows(platform, "binome_platform", [headers["Correlation-Id"]])
    assert [(r["status"], r["decision"]) for r in rows.values()] == [(413, "invalid")]
