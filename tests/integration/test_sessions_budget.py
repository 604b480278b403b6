"""Mentor time budgets and a programme's session settings on the real stack,
the service's events on the broker against their schemas, and the read
models rebuilt from the logs."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from jsonschema import Draft202012Validator

from libs.events import registry, topic_for_context
from libs.events.schemagen import envelope_schema
from libs.messaging.consumer import rebuild
from libs.runtime.replay import READ_TABLES, replay
from libs.settings import Settings
from services.sessions import SERVICE
from tests.support.kafka import read_topic, relay_until_empty, wait_for
from tests.support.pagination import listed, walk_across_rebuild
from tests.support.problems import problem
from tests.support.sessions import NOW, PairIds, SessionsEnv, sessions_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[SessionsEnv]:
    async for environment in sessions_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("sessions-budget")):
        yield environment


@pytest.fixture(autouse=True)
def reset_clock(env: SessionsEnv) -> None:
    env.clock.now = NOW


async def set_rules(env: SessionsEnv, programme_id: Any, **rules: Any) -> dict[str, Any]:
    response = await env.client.put(f"/v1/programmes/{programme_id}/session-settings", json=rules, headers=env.auth())
    assert response.status_code == 200, response.text
    return response.json()


async def hold(env: SessionsEnv, pair: PairIds, hours: float, actual: int, preparation: int) -> dict[str, Any]:
    """Schedule a session ``hours`` from NOW, let it start, record it held."""
    env.clock.now = NOW
    session = await env.schedule(pair, hours, 60)
    env.clock.now = NOW + timedelta(hours=hours, minutes=90)
    body = {"actual_minutes": actual, "preparation_minutes": preparation}
    response = await env.act(session, "mark-held", body, env.member(pair.mentor_id))
    assert response.status_code == 200, response.text
    return response.json()


# --------------------------------------------------------------------------- settings


async def test_session_settings_have_defaults_and_only_hr_changes_them(env: SessionsEnv) -> None:
    programme = await env.programme()
    url = f"/v1/programmes/{programme}/session-settings"
    defaults = (await env.client.get(url, headers=env.auth("regional_committee", countries=["FR"]))).json()
    assert defaults | {"programme_id": None} == {
        "programme_id": None,
        "budget_share_percent": 5.0,
        "weekly_hours": 40.0,
        "monthly_budget_minutes": 520,
        "late_cancellation_hours": 24,
        "version": 0,
        "updated_at": None,
        "updated_by": None,
    }
    changed = await set_rules(env, programme, budget_share_percent=6, weekly_hours=35)
    assert (changed["monthly_budget_minutes"], changed["late_cancellation_hours"], changed["version"]) == (546, 24, 1)
    assert changed["updated_by"]["subject"] == "user-1"
    assert (await env.client.get(url, headers=env.auth())).json() == changed

    before = await env.count_events()
    assert (await set_rules(env, programme, budget_share_percent=6, weekly_hours=35))["version"] == 1  # no change
    for body, field in (
        ({"budget_share_percent": 0}, "body.budget_share_percent"),
        ({"weekly_hours": 100}, "body.weekly_hours"),
        ({"late_cancellation_hours": -1}, "body.late_cancellation_hours"),
        ({"hourly_rate": 3}, "body.hourly_rate"),
    ):
        response = await env.client.put(url, json=body, headers=env.auth())
        assert [e["field"] for e in problem(response, 422)["errors"]] == [field]
    committee = env.auth("regional_committee", countries=["FR"])
    problem(await env.client.put(url, json={}, headers=committee), 403)
    unknown = "/v1/programmes/00000000-0000-4000-8000-000000000000/session-settings"
    problem(await env.client.put(unknown, json={}, headers=env.auth()), 404)
    problem(await env.client.put(url, json={}, headers=env.auth(org="org-b")), 404)
    assert await env.count_events() == before


async def test_late_cancellation_follows_the_programmes_threshold(env: SessionsEnv) -> None:
    programme = await env.programme()
    await set_rules(env, programme, late_cancellation_hours=48)
    pair = await env.form_pair(programme)
    session = await env.schedule(pair, 72)
    env.clock.now = NOW + timedelta(hours=42)  # 30 h of notice: late under a 48 h rule
    response = await env.act(session, "cancel", {"reason": "x"}, env.member(pair.mentee_id))
    assert response.json()["cancellation"] | {"at": None, "by": None} == {
        "cancelled_by": "mentee",
        "reason": "x",
        "notice_hours": 30.0,
        "late": True,
        "at": None,
        "by": None,
    }


# --------------------------------------------------------------------------- budgets


async def test_preparation_and_session_time_count_and_crossing_the_budget_is_flagged_once(env: SessionsEnv) -> None:
    programme = await env.programme()
    assert (await set_rules(env, programme, budget_share_percent=1))["monthly_budget_minutes"] == 104
    first = await env.form_pair(programme, country="FR", mentor_country="DE")
    second = await env.form_pair(programme, mentor_id=first.mentor_id, mentor_country="DE")
    mentor = first.mentor_id
    url = f"/v1/mentors/{mentor}/budget?month=2026-03"

    await hold(env, first, 24, 60, 20)
    budget = (await env.client.get(url, headers=env.member(mentor))).json()
    assert (budget["total_minutes"], budget["remaining_minutes"], budget["over_budget"]) == (80, 24, False)

    await hold(env, second, 48, 25, 5)
    await hold(env, first, 72, 30, 0)
    budget = (await env.client.get(url, headers=env.auth())).json()
    assert budget | {"exceeded_at": None} == {
        "mentor_id": str(mentor),
        "month": "2026-03",
        "programme_id": str(programme),
        "country": "DE",  # the mentor's, not the pair's
        "budget_minutes": 104,
        "total_minutes": 140,
        "session_minutes": 115,
        "preparation_minutes": 25,
        "remaining_minutes": 0,
        "entries": 3,
        "over_budget": True,
        "exceeded_at": None,
        "version": 4,  # three entries and one crossing
    }
    kinds = [e.type.split(".")[2] for e in await env.store.read_stream(f"budget:{mentor}:2026-03")]
    assert kinds == ["MentorTimeLogged", "MentorTimeLogged", "MentorBudgetExceeded", "MentorTimeLogged"]

    # The mentor's committee sees the budget; the pairs' (FR) committee does not.
    assert (await env.client.get(url, headers=env.auth("regional_committee", countries=["DE"]))).status_code == 200
    assert (await env.client.get(url, headers=env.auth("regional_committee", countries=["FR"]))).status_code == 404
    over = (await env.client.get(f"/v1/budgets?programme_id={programme}&over_budget=true", headers=env.auth())).json()
    assert [b["mentor_id"] for b in over["items"]] == [str(mentor)]
    april = await env.client.get(f"/v1/budgets?programme_id={programme}&month=2026-04", headers=env.auth())
    assert april.json()["items"] == []
    problem(await env.client.get("/v1/budgets?month=2026-13", headers=env.auth()), 422)


async def test_a_month_is_the_month_the_session_took_place_in(env: SessionsEnv) -> None:
    programme = await env.programme()
    pair = await env.form_pair(programme)
    await hold(env, pair, 24 * 31, 45, 15)  # 2 April
    april = (await env.client.get(f"/v1/mentors/{pair.mentor_id}/budget?month=2026-04", headers=env.auth())).json()
    march = (await env.client.get(f"/v1/mentors/{pair.mentor_id}/budget?month=2026-03", headers=env.auth())).json()
    assert (april["total_minutes"], april["entries"]) == (60, 1)
    assert (march["total_minutes"], march["entries"], march["budget_minutes"], march["version"]) == (0, 0, 520, 0)
    env.clock.now = NOW
    this_month = (await env.client.get(f"/v1/mentors/{pair.mentor_id}/budget", headers=env.auth())).json()
    assert this_month["month"] == "2026-03"


# --------------------------------------------------------------------------- events and rebuilds


async def test_events_reach_kafka_and_validate_against_their_schemas(env: SessionsEnv, kafka_bootstrap: str) -> None:
    programme = await env.programme()
    await set_rules(env, programme, budget_share_percent=0.5)
    pair = await env.form_pair(programme)
    moved = await env.schedule(pair, 24)
    await env.act(moved, "move", {"starts_at": (NOW + timedelta(hours=30)).isoformat()})
    await env.act(await env.schedule(pair, 48), "cancel", {"reason": "x"})
    missed = await env.schedule(pair, 72)
    env.clock.now = NOW + timedelta(hours=80)
    await env.act(missed, "mark-no-show", {"absent": "mentee"})
    await hold(env, pair, 96, 60, 30)  # over 0.5 % of 40 h (52 minutes)
    await env.check_in(pair, {"mood": 5}, env.member(pair.mentor_id))

    await relay_until_empty(env.pool, env.schema, kafka_bootstrap)
    total = await env.count_events()
    records = await read_topic(kafka_bootstrap, topic_for_context("sessions", env.topic_prefix), until=total)
    assert len(records) == total
    seen: set[str] = set()
    for record in records:
        envelope = orjson.loads(record.value)
        schema = envelope_schema(registry.models[envelope["type"]])
        Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(envelope)
        assert record.key.decode() == envelope["subject"] and envelope["source"] == "/binome/sessions"
        assert envelope["data"]["actor"]["subject"] and envelope["correlationid"]
        seen.add(envelope["type"])
    assert seen == {t for t in registry.models if t.startswith("binome.sessions.")}


async def test_read_models_rebuild_from_the_logs(env: SessionsEnv) -> None:
    programme = await env.programme()
    pair = await env.form_pair(programme)
    await hold(env, pair, 24, 50, 10)
    await env.schedule(pair, 48)

    async def snapshot(*tables: str) -> list[list[str]]:
        query = "SELECT (to_jsonb(t) - 'row_id')::text AS row FROM {}.{} t ORDER BY 1"
        return [[r[0] for r in await env.pool.fetch(query.format(env.schema, table))] for table in tables]

    own = ("sessions", "check_ins", "mentor_months", "session_settings")
    before = await snapshot(*own)
    # `binome replay sessions read-tables`, over this test's schema.
    service = dataclasses.replace(SERVICE, name=env.schema)
    rebuilt = await replay(env.pool, Settings(data_dir=env.data_dir), [service], env.schema, READ_TABLES)
    assert {k: v.applied for k, v in rebuilt.items()} == {READ_TABLES: await env.count_events()}
    assert await snapshot(*own) == before

    learned = await snapshot("pairs", "programmes")
    await rebuild(env.pool, env.schema, env.projection)
    assert await snapshot("pairs", "programmes") == [[], []]
    await env.source.republish_all()  # the matching and enrollment logs, again
    await wait_for(lambda: _rows_back(env, len(learned[0]), len(learned[1])))
    assert await snapshot("pairs", "programmes") == learned


async def _rows_back(env: SessionsEnv, pairs: int, programmes: int) -> bool:
    counts = await env.pool.fetchrow(
        f"SELECT (SELECT count(*) FROM {env.schema}.pairs) AS p, (SELECT count(*) FROM {env.schema}.programmes) AS g"
    )
    return (counts["p"], counts["g"]) == (pairs, programmes)


async def test_a_cursor_held_across_a_rebuild_neither_skips_nor_repeats(env: SessionsEnv) -> None:
    """Lists page by the read model's own content, not by row_id: `binome
    replay sessions read-tables` renumbers every row."""
    programme = await env.programme()
    pairs = [await env.form_pair(programme) for _ in range(3)]
    for i, pair in enumerate(pairs):
        await hold(env, pair, 24 + i, 45, 5)
        await env.schedule(pair, 200 + i)
        await env.check_in(pair, {"mood": 4}, env.member(pair.mentee_id))
    service = dataclasses.replace(SERVICE, name=env.schema)

    async def rebuild_tables() -> None:
        await replay(env.pool, Settings(data_dir=env.data_dir), [service], env.schema, READ_TABLES)

    for path in ("/v1/sessions", "/v1/check-ins", "/v1/budgets"):
        query = {"programme_id": str(programme)}
        everything = await listed(env.client, path, query, env.auth())
        assert len(everything) >= 3, path
        assert await walk_across_rebuild(env.client, path, query, env.auth(), rebuild_tables) == everything, path
