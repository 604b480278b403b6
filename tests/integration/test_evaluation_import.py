"""Importing survey answers collected elsewhere (CSV and XLSX) on the real
stack: one SurveyAnswered per answer, each bad row named by line and column
with nothing written (all or nothing) or left out (valid_only), the
Idempotency-Key replay, and a committee importing only its countries'."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import asyncpg
import openpyxl
import pytest

from services.evaluation.domain.assignments import derived_id
from tests.support.evaluation import EvaluationEnv, evaluation_env
from tests.support.problems import problem

pytestmark = pytest.mark.integration
CSV = {"content-type": "text/csv"}
XLSX = {"content-type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
MATURITY = ["tools", "data_ai", "social_media", "security", "lead_digital"]


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[EvaluationEnv]:
    async for environment in evaluation_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("evaluation-import")):
        yield environment


async def pre_assignments(env: EvaluationEnv, pairs: int, country: str = "FR") -> tuple[str, list[dict]]:
    """A programme's maturity template and the pre-questionnaires of ``pairs`` new pairs."""
    programme = await env.programme()
    wave = await env.wave(programme, country, "Europe")
    formed = [env.new_pair(programme, wave, country) for _ in range(pairs)]
    await env.publish(*(env.formed(p) for p in formed))
    assignments = [await env.one(p.mentee_id, "digital_maturity", "pre") for p in formed]
    return f"/v1/templates/{derived_id(programme, 'digital_maturity')}/answers:import", assignments


def csv_of(rows: list[list[object]]) -> bytes:
    return "\n".join(";".join(str(c) for c in row) for row in [["assignment_id", *MATURITY], *rows]).encode()


def xlsx_of(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in [["assignment_id", *MATURITY], *rows]:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def answered_events(env: EvaluationEnv) -> int:
    return await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.events WHERE type LIKE '%.SurveyAnswered.%'")


async def test_a_csv_and_an_xlsx_file_record_one_answer_per_row(env: EvaluationEnv) -> None:
    path, (a, b, c) = await pre_assignments(env, 3)
    before = await answered_events(env)
    headers = {**env.auth(), **CSV, "Idempotency-Key": "import-csv-1"}
    response = await env.client.post(path, content=csv_of([[a["assignment_id"], 4, 3, 2, 5, 1]]), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() | {"file_sha256": None} == {
        "file_sha256": None, "valid_only": False, "rows": 1, "imported": 1, "errors": []
    }
    again = await env.client.post(path, content=csv_of([[a["assignment_id"], 4, 3, 2, 5, 1]]), headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"

    workbook = xlsx_of([[b["assignment_id"], 1, 2, 3, 4, 5], [c["assignment_id"], 5, 5, 5, 5, 5]])
    response = await env.client.post(path, content=workbook, headers={**env.auth(), **XLSX})
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 2
    assert await answered_events(env) == before + 3  # one event per answer
    done = (await env.client.get(f"/v1/assignments/{b['assignment_id']}", headers=env.auth())).json()
    assert done["status"] == "answered"
    # The answers count in the results as the participants' own would.
    maturity = await env.client.get(f"/v1/pairs/{a['pair_id']}/maturity", headers=env.auth())
    assert maturity.json()["pre_answered"] is True


async def test_a_bad_row_is_named_and_nothing_is_written_unless_valid_only(env: EvaluationEnv) -> None:
    path, (a, b, c) = await pre_assignments(env, 3)
    rows = [
        [a["assignment_id"], 4, 3, 2, 5, 1],
        [b["assignment_id"], 9, 3, 2, 5, 1],  # line 3: a scale of 1-5
        ["not-an-id", 1, 1, 1, 1, 1],  # line 4
        [a["assignment_id"], 1, 1, 1, 1, 1],  # line 5: the same assignment twice
        [c["assignment_id"], 2, 2, 2, 2, ""],  # line 6: a required question left blank
    ]
    before = await answered_events(env)
    for body, headers in ((csv_of(rows), CSV), (xlsx_of(rows), XLSX)):
        rejected = problem(await env.client.post(path, content=body, headers={**env.auth(), **headers}), 422)
        assert [(e["line"], e["field"]) for e in rejected["errors"]] == [
            (3, "tools"), (4, "assignment_id"), (5, "assignment_id"), (6, "lead_digital")
        ]
    assert await answered_events(env) == before

    partial = await env.client.post(path, params={"mode": "valid_only"}, content=csv_of(rows),
                                    headers={**env.auth(), **CSV})
    assert partial.status_code == 200 and partial.json()["imported"] == 1 and len(partial.json()["errors"]) == 4
    assert await answered_events(env) == before + 1
    # An answered survey stays answered: importing it again is a bad row.
    twice = problem(await env.client.post(path, content=csv_of(rows[:1]), headers={**env.auth(), **CSV}), 422)
    assert twice["errors"][0]["field"] == "assignment_id" and "answered already" in twice["errors"][0]["message"]


async def test_unreadable_files_and_unknown_columns_are_refused(env: EvaluationEnv) -> None:
    path, (a,) = await pre_assignments(env, 1)
    bad_column = b"assignment_id;colour\n" + a["assignment_id"].encode() + b";red\n"
    refused = problem(await env.client.post(path, content=bad_column, headers={**env.auth(), **CSV}), 422)
    assert refused["errors"][0]["field"] == "colour"
    not_a_workbook = problem(await env.client.post(path, content=b"PK\x03\x04nonsense",
                                                   headers={**env.auth(), **XLSX}), 422)
    assert not_a_workbook["errors"][0]["field"] == "file"
    problem(await env.client.post(path, content=b"{}", headers={**env.auth(), "content-type": "application/json"}),
            415)


async def test_a_committee_imports_only_its_countries_answers(env: EvaluationEnv) -> None:
    path, (german,) = await pre_assignments(env, 1, country="DE")
    before = await answered_events(env)
    body = csv_of([[german["assignment_id"], 3, 3, 3, 3, 3]])
    french = env.auth("regional_committee", countries=["FR"])
    # Another country's assignment: the same 404 as for none at all, naming the row.
    hidden = problem(await env.client.post(path, content=body, headers={**french, **CSV}), 404)
    assert hidden["detail"] == f"line 2: assignment {german['assignment_id']} not found"
    unknown = csv_of([["00000000-0000-4000-8000-000000000000", 3, 3, 3, 3, 3]])
    assert problem(await env.client.post(path, content=unknown, headers={**env.auth(), **CSV}), 404)["detail"] == \
        "line 2: assignment 00000000-0000-4000-8000-000000000000 not found"
    problem(await env.client.post(path, content=body, headers={**env.auth(org="org-b"), **CSV}), 404)
    problem(await env.client.post(path, content=body, headers={**env.auth("ops"), **CSV}), 403)
    problem(await env.client.post(path, content=body, headers={**env.participant(german["participant_id"]), **CSV}),
            403)
    assert await answered_events(env) == before
    own = env.auth("regional_committee", countries=["DE"])
    assert (await env.client.post(path, content=body, headers={**own, **CSV})).json()["imported"] == 1
