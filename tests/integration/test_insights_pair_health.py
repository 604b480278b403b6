"""Pair health from real event sequences carried by the broker: statuses,
reasons naming their fact, lists paged by pair id, thresholds per
programme, regional scoping, and the business gauges."""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.events.contexts import sessions as se
from libs.events.registry import registry
from libs.observability import metrics
from services.insights.health import gauges
from tests.support.insights import NOW, T0, Scenario, health_scenario, insights_env  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def world(insights_env):  # noqa: F811
    sc, pairs = health_scenario()
    await insights_env.pipeline.feed(sc)
    return sc, pairs


def ids(items) -> list[str]:
    return [i["pair_id"] for i in items]


async def test_each_pair_gets_a_status_and_reasons_naming_the_fact(insights_env, world) -> None:  # noqa: F811
    sc, p = world
    api, org = insights_env.api, sc.organisation

    async def health(name):
        return await api.ok(f"/v1/pairs/{p[name].pair_id}/health", org)

    healthy = await health("healthy")
    assert healthy["status"] == "healthy" and healthy["reasons"] == []
    assert healthy["activity"]["sessions_held"] == 2

    expected = {
        "no_first": ("at_risk", "no_first_session", "PairFormed"),
        "mood": ("at_risk", "low_mood", "CheckInRecorded"),
        "cancels": ("at_risk", "cancellations", "SessionCancelled"),
        "overdue": ("at_risk", "overdue_surveys", "SurveyAssigned"),
        "dormant": ("dormant", "dormant", "SessionHeld"),
        "ended": ("ended", "completed", "PairCompleted"),
        "feedback": ("at_risk", "low_feedback", "SurveyAnswered"),
        "budget": ("at_risk", "mentor_over_budget", "MentorBudgetExceeded"),
    }
    for name, (status, code, fact) in expected.items():
        body = await health(name)
        assert body["status"] == status, (name, body)
        assert [(r["code"], r["fact"]) for r in body["reasons"]] == [(code, fact)], (name, body)
    mood = (await health("mood"))["reasons"][0]
    assert mood["values"] == {"member": "mentee", "mood": 1, "threshold": 2}
    assert mood["detail"] == "The mentee's latest check-in mood is 1 of 5."
    assert mood["at"].startswith((T0 + timedelta(days=25)).date().isoformat())


async def test_at_risk_lists_per_country_region_and_wave_by_pair_id(insights_env, world) -> None:  # noqa: F811
    sc, p = world
    api, org = insights_env.api, sc.organisation
    france = await api.ok("/v1/pair-health", org, country="FR")
    # A stable order (a status changes with time, a pair's place does not).
    assert ids(france["items"]) == sorted(str(p[n].pair_id) for n in ("mood", "no_first", "overdue", "cancels"))

    europe_dormant = await api.ok("/v1/pair-health", org, region="Europe", status="dormant")
    assert ids(europe_dormant["items"]) == [str(p["dormant"].pair_id)]

    brazil_wave = await api.ok("/v1/pair-health", org, wave_id=str(sc.waves["BR"]))
    assert ids(brazil_wave["items"]) == [str(p["budget"].pair_id)]

    ended = await api.ok("/v1/pair-health", org, status="ended")
    assert ids(ended["items"]) == [str(p["ended"].pair_id)]

    first = await api.ok("/v1/pair-health", org, limit=3)
    assert len(first["items"]) == 3 and first["next_cursor"]
    paged, cursor = ids(first["items"]), first["next_cursor"]
    while cursor:
        page = await api.ok("/v1/pair-health", org, limit=3, cursor=cursor)
        paged, cursor = paged + ids(page["items"]), page["next_cursor"]
    everything = await api.ok("/v1/pair-health", org)
    assert len(everything["items"]) == 7 and paged == ids(everything["items"])
    # Pages are full although the rules filter after SQL: one item a page, and
    # a status that only one pair of nine has (read batch after batch).
    for statuses in (("at_risk", "dormant"), ("healthy",), ("ended", "healthy")):
        whole = ids((await api.ok("/v1/pair-health", org, status=list(statuses)))["items"])
        walked, cursor = [], None
        while True:
            page = await api.ok("/v1/pair-health", org, status=list(statuses), limit=1,
                                **({"cursor": cursor} if cursor else {}))
            assert len(page["items"]) == 1, statuses
            walked, cursor = walked + ids(page["items"]), page["next_cursor"]
            if cursor is None:
                break
        assert walked == whole == sorted(whole), statuses
    wrong_scope = await api.get("/v1/pair-health", org, country="FR", cursor=first["next_cursor"])
    assert wrong_scope.status_code == 422 and wrong_scope.json()["errors"][0]["field"] == "query.cursor"


async def test_a_committee_sees_its_countries_only_and_ops_sees_nothing(insights_env, world) -> None:  # noqa: F811
    sc, p = world
    api, org = insights_env.api, sc.organisation
    committee = ("regional_committee",)
    mine = await api.ok("/v1/pair-health", org, *committee, countries=("FR",))
    assert set(ids(mine["items"])) == {str(p[n].pair_id) for n in ("mood", "no_first", "overdue", "cancels")}
    assert (await api.get(f"/v1/pairs/{p['dormant'].pair_id}/health", org, *committee, countries=("FR",))).status_code == 404
    assert (await api.get("/v1/pair-health", org, *committee, countries=("FR",), country="DE")).status_code == 404
    assert (await api.get("/v1/pair-health", org, *committee, countries=("FR",), wave_id=str(sc.waves["DE"]))).status_code == 404
    # Another organisation's pair does not exist for this caller.
    assert (await api.get(f"/v1/pairs/{p['healthy'].pair_id}/health", "org-other")).status_code == 404
    denied = await api.get("/v1/pair-health", org, "ops")
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
    assert (await api.get(f"/v1/programmes/{sc.programme_id}/network", org, "ops")).status_code == 403


async def test_thresholds_are_the_programmes_configuration(insights_env, world) -> None:  # noqa: F811
    sc, p = world
    api, org = insights_env.api, sc.organisation
    path = f"/v1/programmes/{sc.programme_id}/health-rules"
    before = await api.ok(path, org)
    assert before["effective"]["first_session_within_days"] == 21 and before["overrides"] == {}

    headers = api.auth(org, "regional_committee", countries=("FR",))
    assert (await api.http.put(path, json={"first_session_within_days": 45}, headers=headers)).status_code == 403
    bad = await api.http.put(path, json={"first_session_within_days": 0, "colour": "red"}, headers=api.auth(org))
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in bad.json()["errors"]} == {"body.first_session_within_days", "body.colour"}
    assert (await api.ok(path, org))["overrides"] == {}  # bad input changed nothing

    put = await api.http.put(path, json={"first_session_within_days": 45}, headers=api.auth(org))
    assert put.status_code == 200, put.text
    assert put.json()["overrides"] == {"first_session_within_days": 45} and put.json()["updated_by"] == "user-1"
    try:
        assert (await api.ok(f"/v1/pairs/{p['no_first'].pair_id}/health", org))["status"] == "healthy"
    finally:
        assert (await api.http.put(path, json={}, headers=api.auth(org))).status_code == 200
    assert (await api.ok(f"/v1/pairs/{p['no_first'].pair_id}/health", org))["status"] == "at_risk"


async def test_a_members_low_mood_is_not_hidden_by_the_other_members_later_check_in(insights_env) -> None:  # noqa: F811
    """Reported: the mentee checks in with mood 1, the mentor with mood 5 a
    minute later, and the pair showed healthy (only the pair's latest
    check-in counted). Each member's latest check-in counts, named."""
    sc = Scenario()
    sc.programme()
    sc.wave("IE")
    pair = sc.pair(sc.enrol("IE", "mentee"), sc.enrol("IE", "mentor"))
    sc.held(pair, NOW - timedelta(days=3))
    sc.check_in(pair, NOW - timedelta(days=2), mood=1, member=se.Member.MENTEE)
    sc.check_in(pair, NOW - timedelta(days=2) + timedelta(minutes=1), mood=5, member=se.Member.MENTOR)
    await insights_env.pipeline.feed(sc)
    body = await insights_env.api.ok(f"/v1/pairs/{pair.pair_id}/health", sc.organisation)
    assert body["status"] == "at_risk", body
    [reason] = body["reasons"]
    assert (reason["code"], reason["values"]) == ("low_mood", {"member": "mentee", "mood": 1, "threshold": 2})
    assert body["activity"]["moods"] == {
        "mentee": {"mood": 1, "at": reason["at"]},
        "mentor": {"mood": 5, "at": body["activity"]["moods"]["mentor"]["at"]},
    }
    assert body["activity"]["last_mood"] == 5  # the pair's latest check-in, as before


async def test_business_gauges_count_active_and_at_risk_pairs_per_country(insights_env) -> None:  # noqa: F811
    sc = Scenario()
    sc.programme()
    sc.wave("LU")
    healthy = sc.pair(sc.enrol("LU", "mentee"), sc.enrol("LU", "mentor"))
    sc.held(healthy, NOW - timedelta(days=2))
    sc.pair(sc.enrol("LU", "mentee"), sc.enrol("LU", "mentor"))  # no first session after 30 days
    done = sc.pair(sc.enrol("LU", "mentee"), sc.enrol("LU", "mentor"))
    sc.complete(done, T0 + timedelta(days=1))
    await insights_env.pipeline.feed(sc)
    assert metrics.PAIRS_ACTIVE.labels("insights", "LU")._value.get() == 2
    assert metrics.PAIRS_AT_RISK.labels("insights", "LU")._value.get() == 1


async def test_a_batch_refreshes_each_country_it_touched_once(insights_env, monkeypatch) -> None:  # noqa: F811
    """The runtime hands a fetched batch to ``handle_batch``: the gauges, which
    recompute every pair of a country, are refreshed once per country after
    the batch, and come out as if the events had been applied one by one."""
    sc = Scenario()
    sc.programme()
    sc.wave("LU")
    sc.wave("MT")
    for country in ("LU", "MT"):
        formed = sc.pair(sc.enrol(country, "mentee"), sc.enrol(country, "mentor"))
        sc.held(formed, NOW - timedelta(days=1))
        sc.pair(sc.enrol(country, "mentee"), sc.enrol(country, "mentor"))  # no first session: at risk
    items = [(envelope, registry.load(envelope)) for _, envelope in sc.events]
    refreshed: list[str] = []
    real_refresh = gauges.refresh

    async def counting_refresh(db, schema, country, now):
        refreshed.append(country)
        await real_refresh(db, schema, country, now)

    def gauge_values(country: str) -> tuple[float, float]:
        return (
            metrics.PAIRS_ACTIVE.labels("insights", country)._value.get(),
            metrics.PAIRS_AT_RISK.labels("insights", country)._value.get(),
        )

    before = {country: gauge_values(country) for country in ("LU", "MT")}  # other tests' pairs count too
    monkeypatch.setattr(gauges, "refresh", counting_refresh)
    projection = insights_env.pipeline.projection
    async with insights_env.pipeline.pool.acquire() as conn, conn.transaction():
        await projection.handle_batch(conn, items)
    assert len(items) > 10 and refreshed == ["LU", "MT"]
    for country, (active, at_risk) in before.items():
        assert gauge_values(country) == (active + 2, at_risk + 1)
