"""The rollout dashboard and the success factors from real event sequences:
counts per programme/region/country/wave, response rates, maturity delta,
time to first session, the chart, effect sizes, the anonymity threshold and
the regional scoping."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from PIL import Image

from services.insights.entrypoints.schemas import RolloutOut
from tests.support.insights import T0, Scenario, insights_env  # noqa: F401

pytestmark = pytest.mark.integration


def day(n: float):
    return T0 + timedelta(days=n)


@pytest.fixture(scope="module")
async def rollout_world(insights_env):  # noqa: F811
    sc = Scenario()
    sc.programme()
    sc.k_anonymity(3)
    sc.wave("FR", "Europe", target=5)
    sc.wave("DE", "Europe", target=3)
    sc.wave("BR", "Americas", target=4)
    sc.enrol("BR", "mentee")
    sc.enrol("BR", "mentor", qualified=False)
    sc.withdraw(sc.enrol("FR", "mentee"))
    french = [sc.pair(sc.enrol("FR", "mentee"), sc.enrol("FR", "mentor")) for _ in range(3)]
    maturity = (([2], [3]), ([4], [5]), ([2], [2, 3]))  # scale answers before and after
    for pair, first, (pre, post) in zip(french, (3, 5, 40), maturity, strict=True):
        sc.held(pair, day(first))
        sc.survey(pair, "digital_maturity", "pre", due=day(1), scale=pre, answered=day(0.5))
        sc.survey(pair, "digital_maturity", "post", due=day(60), scale=post, answered=day(59))
    sc.held(french[0], day(20))
    sc.survey(french[0], "session_feedback", "session", due=day(25), scale=None)  # open: not answered
    sc.complete(french[0], day(90))
    german = sc.pair(sc.enrol("DE", "mentee"), sc.enrol("DE", "mentor"))
    sc.held(german, day(10))
    sc.survey(german, "digital_maturity", "pre", due=day(1), scale=[3], answered=day(0.5))
    sc.survey(german, "digital_maturity", "post", due=day(60), scale=[4], answered=day(59))
    sc.dissolve(german, day(30))
    await insights_env.pipeline.feed(sc)
    return sc


async def test_rollout_counts_every_level(insights_env, rollout_world) -> None:  # noqa: F811
    sc = rollout_world
    body = await insights_env.api.ok(f"/v1/programmes/{sc.programme_id}/rollout", sc.organisation)
    assert body["k_anonymity"] == 3
    [programme] = body["programme"]
    assert programme["waves"] == 3 and programme["target_pairs"] == 12
    assert programme["enrolled"] == 11 and programme["withdrawn"] == 1 and programme["matched"] == 8
    assert programme["mentors"] == 5 and programme["qualified_mentors"] == 4
    assert programme["pairs_formed"] == 4 and programme["pairs_active"] == 2
    assert programme["pairs_completed"] == 1 and programme["pairs_dissolved"] == 1
    assert programme["sessions_held"] == 5
    assert programme["surveys_due"] == 9 and programme["surveys_answered"] == 8
    assert programme["survey_response_rate"] == round(8 / 9, 4)

    countries = {r["country"]: r for r in body["country"]}
    assert set(countries) == {"FR", "DE", "BR"}
    fr, de, br = countries["FR"], countries["DE"], countries["BR"]
    assert fr["region"] == "Europe" and fr["pairs_formed"] == 3 and fr["sessions_held"] == 4
    # Enrolled 30 days before forming; first sessions 3, 5 and 40 days after.
    assert fr["median_days_to_first_session"] == 35.0 and fr["pairs_with_first_session"] == 3
    # (3-2)/2, (5-4)/4, (2.5-2)/2 -> 50, 25, 25 %: their mean is 33.33 %; three pairs, k = 3: shown.
    assert fr["maturity_mean_pair_change_percent"] == pytest.approx(33.33, abs=0.01) and fr["suppressed"] == []
    # The change of the means, as evaluation's results name it: (3.5 - 8/3) / (8/3) = 31.25 %.
    assert fr["maturity_change_of_means_percent"] == pytest.approx(31.25, abs=0.01)
    # The name older clients read is the mean of the pairs' changes, as before.
    assert fr["maturity_delta_percent"] == fr["maturity_mean_pair_change_percent"]
    # One German pair is below the threshold: suppressed, not shown.
    assert de["maturity_mean_pair_change_percent"] is None and de["maturity_change_of_means_percent"] is None
    assert de["maturity_delta_percent"] is None
    assert de["suppressed"] == ["maturity_change_of_means_percent", "maturity_mean_pair_change_percent", "maturity_delta_percent"]
    assert br["enrolled"] == 2 and br["pairs_formed"] == 0 and br["survey_response_rate"] is None
    regions = {r["region"]: r for r in body["region"]}
    assert regions["Europe"]["pairs_formed"] == 4 and regions["Europe"]["maturity_pairs"] == 4
    europe = regions["Europe"]
    assert europe["maturity_mean_pair_change_percent"] == pytest.approx((50 + 25 + 25 + 100 / 3) / 4, abs=0.01)
    assert europe["maturity_change_of_means_percent"] == pytest.approx((3.625 - 2.75) / 2.75 * 100, abs=0.01)
    assert {w["wave_name"]: w["pairs_formed"] for w in body["wave"]} == {"FR wave": 3, "DE wave": 1, "BR wave": 0}


async def test_a_programme_without_waves_answers_zeros(insights_env) -> None:  # noqa: F811
    """The programme's grand total exists before any wave (SQL sums over no
    row are NULL): its counts are 0, never null, as the typed answer says."""
    sc = Scenario()
    sc.programme()
    await insights_env.pipeline.feed(sc)
    body = await insights_env.api.ok(f"/v1/programmes/{sc.programme_id}/rollout", sc.organisation)
    for row in body["programme"]:
        assert row["waves"] == 0 and row["target_pairs"] == 0 and row["enrolled"] == 0
    assert body["region"] == body["country"] == body["wave"] == []


async def test_a_committee_sees_its_countries_in_the_dashboard(insights_env, rollout_world) -> None:  # noqa: F811
    sc = rollout_world
    body = await insights_env.api.ok(f"/v1/programmes/{sc.programme_id}/rollout", sc.organisation,
                                     "regional_committee", countries=("DE",))
    assert [r["country"] for r in body["country"]] == ["DE"]
    assert body["programme"][0]["pairs_formed"] == 1 and body["programme"][0]["enrolled"] == 2
    assert (await insights_env.api.get(f"/v1/programmes/{sc.programme_id}/rollout", sc.organisation, "ops")).status_code == 403


async def test_the_answer_is_the_documented_model_byte_for_byte(insights_env, rollout_world) -> None:  # noqa: F811
    """The route encodes its rows itself (``as_json``, orjson): the bytes must
    be those ``response_model=RolloutOut`` with ``exclude_unset`` gave, for
    every level (a level's own keys only), a suppressed figure and a null
    rate included."""
    path = f"/v1/programmes/{rollout_world.programme_id}/rollout"
    for roles, countries in (((), ()), (("regional_committee",), ("DE",))):
        answer = await insights_env.api.get(path, rollout_world.organisation, *roles, countries=countries)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        documented = RolloutOut.model_validate_json(answer.content).model_dump_json(exclude_unset=True)
        assert answer.content == documented.encode()


async def test_a_mentor_is_matched_in_their_own_wave_whatever_the_mentee_s(insights_env) -> None:  # noqa: F811
    """A pair lives in its mentee's wave; its mentor, enrolled in another
    country's wave, counts as matched there, also for that country's
    committee, who sees no pair; a pair only proposed matches no one."""
    sc = Scenario()
    sc.programme()
    sc.wave("FR", "Europe")
    sc.wave("DE", "Europe")
    sc.pair(sc.enrol("FR", "mentee"), sc.enrol("DE", "mentor"))
    sc.propose(sc.enrol("FR", "mentee"), sc.enrol("DE", "mentor"))
    await insights_env.pipeline.feed(sc)
    path = f"/v1/programmes/{sc.programme_id}/rollout"
    body = await insights_env.api.ok(path, sc.organisation)
    countries = {r["country"]: r for r in body["country"]}
    assert countries["FR"]["matched"] == 1 and countries["FR"]["pairs_formed"] == 1
    assert countries["DE"]["matched"] == 1 and countries["DE"]["pairs_formed"] == 0
    assert body["programme"][0]["matched"] == 2 and body["programme"][0]["enrolled"] == 4
    german = await insights_env.api.ok(path, sc.organisation, "regional_committee", countries=("DE",))
    assert german["programme"][0]["matched"] == 1 and german["programme"][0]["pairs_formed"] == 0


async def test_rollout_chart_is_a_valid_svg_and_png(insights_env, rollout_world) -> None:  # noqa: F811
    path = f"/v1/programmes/{rollout_world.programme_id}/rollout/chart"
    svg = await insights_env.api.get(path, rollout_world.organisation)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(svg.content).tag == "{http://www.w3.org/2000/svg}svg"
    png = await insights_env.api.get(path, rollout_world.organisation, format="png")
    image = Image.open(io.BytesIO(png.content))
    image.verify()
    assert image.format == "PNG"


async def test_an_erased_participant_is_gone_from_the_read_model(insights_env) -> None:  # noqa: F811
    sc = Scenario()
    sc.programme()
    sc.wave("PT")
    kept, erased = sc.enrol("PT", "mentee"), sc.enrol("PT", "mentee")
    sc.erase(erased)
    await insights_env.pipeline.feed(sc)
    body = await insights_env.api.ok(f"/v1/programmes/{sc.programme_id}/rollout", sc.organisation)
    assert body["programme"][0]["enrolled"] == 1
    remaining = await insights_env.pipeline.pool.fetch(
        f"SELECT participant_id FROM {insights_env.schema}.participants WHERE participant_id = ANY($1::uuid[])",
        [kept.participant_id, erased.participant_id])
    assert [r["participant_id"] for r in remaining] == [kept.participant_id]


@pytest.fixture(scope="module")
async def factors_world(insights_env):  # noqa: F811
    """Eight French pairs: four share a business function, all completed with
    4-6 sessions; four do not, half dissolved, with 1-2 sessions."""
    sc = Scenario()
    sc.programme()
    sc.k_anonymity(3)
    sc.wave("FR")
    for i, sessions in enumerate((4, 5, 6, 5, 1, 2, 1, 2)):
        same = i < 4
        pair = sc.pair(sc.enrol("FR", "mentee", business_function="finance"),
                       sc.enrol("FR", "mentor", business_function="finance" if same else "it"))
        for n in range(sessions):
            sc.held(pair, day(2 + 7 * n))
        if same or i % 2 == 0:
            sc.complete(pair, day(80))
        else:
            sc.dissolve(pair, day(50))
    await insights_env.pipeline.feed(sc)
    return sc


async def test_success_factors_have_effect_sizes_and_intervals(insights_env, factors_world) -> None:  # noqa: F811
    sc = factors_world
    body = await insights_env.api.ok(f"/v1/programmes/{sc.programme_id}/success-factors", sc.organisation)
    assert body["pairs"] == 8 and body["k_anonymity"] == 3
    factors = {f["factor"]: f["outcomes"] for f in body["factors"]}
    function = factors["same_business_function"]
    completed = function["completed"]
    assert completed["measure"] == "risk_difference"
    assert completed["with"] == {"n": 4, "value": 1.0} and completed["without"] == {"n": 4, "value": 0.5}
    assert completed["estimate"] == 0.5 and completed["ci95"][0] < 0.5 < completed["ci95"][1]
    sessions = function["sessions_held"]
    assert sessions["estimate"] == 3.5 and 0 < sessions["ci95"][0] < 3.5 < sessions["ci95"][1]
    assert sessions["hedges_g"] > 2
    # Every pair is French and in one entity: no second group to compare with.
    assert factors["country_FR"]["completed"] == {"suppressed": True, "reason": "a group has fewer than 3 pairs"}
    assert factors["same_entity"]["sessions_held"]["suppressed"] is True
    # No survey answered: nothing to show, and no count either.
    assert "with" not in function["maturity_delta_percent"]


async def test_no_group_below_the_anonymity_threshold(insights_env, factors_world) -> None:  # noqa: F811
    sc = factors_world
    sc.k_anonymity(5)
    await insights_env.pipeline.feed(sc)
    body = await insights_env.api.ok(f"/v1/programmes/{sc.programme_id}/success-factors", sc.organisation)
    assert body["k_anonymity"] == 5
    for factor in body["factors"]:
        for outcome in factor["outcomes"].values():
            assert outcome["suppressed"] is True and "with" not in outcome and "without" not in outcome
