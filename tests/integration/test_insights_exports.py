"""Spreadsheet exports through insights' API: CSV and XLSX of the rollout,
pairs with health, participants and survey results; typed columns, a header
row, neutralised text, the committee's countries only, bad input a 4xx."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import openpyxl
import pytest

from services.insights.health.rules import Status
from tests.support.insights import T0, Scenario, insights_env  # noqa: F401

pytestmark = pytest.mark.integration

FORMULA = "=HYPERLINK(\"http://evil\",\"x\")"
BIDI = "Acme\u202eecnarF"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture(scope="module")
async def world(insights_env):  # noqa: F811
    sc = Scenario()
    sc.programme()
    sc.k_anonymity(2)
    sc.wave("FR", "Europe")
    sc.wave("BR", "Americas")
    fr = [sc.pair(sc.enrol("FR", "mentee", entity=FORMULA), sc.enrol("FR", "mentor", entity=BIDI)) for _ in range(2)]
    for pair, (pre, post) in zip(fr, (([2], [3]), ([4], [5])), strict=True):
        sc.held(pair, day(3))
        sc.survey(pair, "digital_maturity", "pre", due=day(1), scale=pre, answered=day(0.5))
        sc.survey(pair, "digital_maturity", "post", due=day(60), scale=post, answered=day(59))
    br = sc.pair(sc.enrol("BR", "mentee", entity="-1+1"), sc.enrol("BR", "mentor"))
    sc.survey(br, "digital_maturity", "pre", due=day(1), scale=[3], answered=day(0.5))
    await insights_env.pipeline.feed(sc)
    return sc


async def export(env, sc, dataset, fmt="csv", *roles, countries=(), **params):
    response = await env.api.get(
        f"/v1/programmes/{sc.programme_id}/exports/{dataset}", sc.organisation, *roles, countries=countries,
        format=fmt, **params,
    )
    assert response.status_code == 200, response.text
    return response


def read_csv(response) -> list[dict[str, str]]:
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def read_xlsx(response) -> list[dict]:
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in rows]


async def test_participants_csv_neutralises_formulas_and_bidi(insights_env, world) -> None:  # noqa: F811
    rows = read_csv(await export(insights_env, world, "participants"))
    assert len(rows) == 6
    entities = {r["entity"] for r in rows}
    assert f"'{FORMULA}" in entities and "'-1+1" in entities  # prefixed: text, never a formula
    assert "AcmeecnarF" in entities and not any("\u202e" in e for e in entities)
    assert {r["matched"] for r in rows} == {"true"}
    assert {r["enrolled_on"] for r in rows} == {(T0 - timedelta(days=30)).date().isoformat()}


async def test_participants_xlsx_has_typed_columns(insights_env, world) -> None:  # noqa: F811
    rows = read_xlsx(await export(insights_env, world, "participants", "xlsx"))
    assert len(rows) == 6
    first = rows[0]
    assert isinstance(first["job_level"], int) and isinstance(first["tenure_years"], int)
    assert first["matched"] is True
    assert isinstance(first["enrolled_on"], datetime) and first["enrolled_on"].date() == (T0 - timedelta(days=30)).date()
    assert {r["entity"] for r in rows} >= {f"'{FORMULA}", "AcmeecnarF"}


async def test_pairs_with_health_and_instants(insights_env, world) -> None:  # noqa: F811
    rows = read_xlsx(await export(insights_env, world, "pairs", "xlsx"))
    assert len(rows) == 3
    assert {r["country"] for r in rows} == {"FR", "BR"}
    assert {r["health"] for r in rows} <= {s.value for s in Status}
    assert all(isinstance(r["formed_at"], datetime) for r in rows)
    assert sorted(r["sessions_held"] for r in rows) == [0, 1, 1]
    csv_rows = read_csv(await export(insights_env, world, "pairs"))
    assert {r["pair_id"] for r in csv_rows} == {r["pair_id"] for r in rows}
    assert all(r["formed_at"].endswith("Z") for r in csv_rows)


async def test_survey_results_respect_the_anonymity_threshold(insights_env, world) -> None:  # noqa: F811
    rows = read_xlsx(await export(insights_env, world, "surveys", "xlsx"))
    by = {(r["country"], r["phase"]): r for r in rows}
    assert by[("FR", "pre")]["answered"] == 2 and by[("FR", "pre")]["mean_score"] == pytest.approx(3.0)
    assert by[("FR", "post")]["mean_score"] == pytest.approx(4.0) and by[("FR", "post")]["response_rate"] == 1
    assert by[("BR", "pre")]["answered"] == 1 and by[("BR", "pre")]["mean_score"] is None  # 1 < k = 2


async def test_rollout_levels(insights_env, world) -> None:  # noqa: F811
    rows = read_csv(await export(insights_env, world, "rollout"))
    levels = {r["level"] for r in rows}
    assert levels == {"programme", "region", "country", "wave"}
    [programme] = [r for r in rows if r["level"] == "programme"]
    assert programme["pairs_formed"] == "3" and programme["enrolled"] == "6"


async def test_a_committee_exports_its_countries_only(insights_env, world) -> None:  # noqa: F811
    for dataset in ("participants", "pairs", "surveys", "rollout"):
        rows = read_csv(await export(insights_env, world, dataset, "csv", "regional_committee", countries=("BR",)))
        assert rows and {r["country"] for r in rows if r["country"]} == {"BR"}, dataset
    hidden = await insights_env.api.get(
        f"/v1/programmes/{world.programme_id}/exports/pairs", world.organisation, "regional_committee",
        countries=("BR",), country="FR",
    )
    assert hidden.status_code == 404
    other_org = await insights_env.api.get(f"/v1/programmes/{world.programme_id}/exports/pairs", "org-other")
    assert other_org.status_code == 404


async def test_bad_input_names_the_field(insights_env, world) -> None:  # noqa: F811
    for params, path, field in (({"format": "pdf"}, "pairs", "format"), ({}, "people", "dataset")):
        response = await insights_env.api.get(
            f"/v1/programmes/{world.programme_id}/exports/{path}", world.organisation, **params
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text
    ops = await insights_env.api.get(f"/v1/programmes/{world.programme_id}/exports/pairs", world.organisation, "ops")
    assert ops.status_code == 403



async def test_a_transferred_participant_counts_in_its_new_wave(insights_env) -> None:  # noqa: F811
    sc = Scenario()
    sc.programme()
    sc.wave("FR", "Europe")
    sc.wave("DE", "Europe")
    person = sc.enrol("FR", "mentee")
    sc.transfer(person, "DE")
    await insights_env.pipeline.feed(sc)
    germany = read_csv(await export(insights_env, sc, "participants", "csv", "regional_committee", countries=("DE",)))
    assert [(r["participant_id"], r["country"], r["wave_id"]) for r in germany] == [
        (str(person.participant_id), "DE", str(sc.waves["DE"]))
    ]
    assert read_csv(await export(insights_env, sc, "participants", "csv", "regional_committee", countries=("FR",))) == []
