"""Who sees and changes what in the sessions API: a regional committee only
its countries (another country's object is a 404, never a 403), a participant
only its own pairs, another organisation nothing, ops nothing but metrics,
a Binome service reads only. Every refused change stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tests.support.sessions import NOW, PairIds, SessionsEnv, schedule_body, sessions_env

pytestmark = pytest.mark.integration


@dataclass
class World:
    fr: PairIds
    de: PairIds
    fr_session: dict[str, Any]
    de_session: dict[str, Any]
    de_check_in: dict[str, Any]


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[SessionsEnv]:
    async for environment in sessions_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("sessions-isolation")):
        yield environment


@pytest.fixture(scope="module")
async def world(env: SessionsEnv) -> World:
    env.clock.now = NOW
    programme = await env.programme()
    fr = await env.form_pair(programme, country="FR")
    de = await env.form_pair(programme, country="DE")
    fr_session, de_session = await env.schedule(fr, 24), await env.schedule(de, 24)
    check_in = await env.check_in(de, {"mood": 3})
    assert check_in.status_code == 201
    return World(fr, de, fr_session, de_session, check_in.json())


def changes(world: World, pair: PairIds, session: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every command on a pair and on one of its sessions."""
    sid = session["session_id"]
    return [
        (f"/v1/pairs/{pair.pair_id}/sessions", schedule_body(NOW + timedelta(days=9))),
        (f"/v1/sessions/{sid}:move", {"starts_at": (NOW + timedelta(days=8)).isoformat()}),
        (f"/v1/sessions/{sid}:cancel", {"reason": "no"}),
        (f"/v1/sessions/{sid}:mark-held", {"actual_minutes": 30}),
        (f"/v1/sessions/{sid}:mark-no-show", {"absent": "mentee"}),
    ]


def reads(world: World, pair: PairIds, session: dict[str, Any]) -> list[str]:
    return [
        f"/v1/pairs/{pair.pair_id}",
        f"/v1/sessions/{session['session_id']}",
        f"/v1/sessions?pair_id={pair.pair_id}",
        f"/v1/sessions?participant_id={pair.mentee_id}",
        f"/v1/check-ins?pair_id={pair.pair_id}",
        f"/v1/mentors/{pair.mentor_id}/budget",
    ]


async def refused(env: SessionsEnv, headers: dict[str, str], world: World, status: int) -> None:
    before = await env.count_events()
    for url, body in changes(world, world.de, world.de_session):
        response = await env.client.post(url, json=body, headers=headers)
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert await env.count_events() == before


async def test_a_committee_sees_and_changes_only_its_countries(env: SessionsEnv, world: World) -> None:
    fr = env.auth("regional_committee", countries=["FR"])
    for url in reads(world, world.fr, world.fr_session):
        assert (await env.client.get(url, headers=fr)).status_code == 200, url
    for url in [*reads(world, world.de, world.de_session), f"/v1/check-ins/{world.de_check_in['check_in_id']}"]:
        assert (await env.client.get(url, headers=fr)).status_code == 404, url
    await refused(env, fr, world, 404)

    listed = (await env.client.get("/v1/sessions", headers=fr)).json()["items"]
    assert {s["country"] for s in listed} == {"FR"}
    assert (await env.client.get("/v1/sessions?country=DE", headers=fr)).status_code == 404
    assert (await env.client.get("/v1/check-ins", headers=fr)).json()["items"] == []
    assert (await env.client.get("/v1/budgets?country=DE", headers=fr)).status_code == 404

    moved = await env.act(world.fr_session, "move", {"starts_at": (NOW + timedelta(days=6)).isoformat()}, fr)
    assert moved.status_code == 200 and moved.json()["moves"][0]["moved_by"] == "hr"


async def test_a_participant_sees_only_its_own_pairs(env: SessionsEnv, world: World) -> None:
    mentee = env.member(world.fr.mentee_id)
    for url in reads(world, world.fr, world.fr_session)[:-1]:  # a mentee has no budget
        assert (await env.client.get(url, headers=mentee)).status_code == 200, url
    assert (await env.client.get(f"/v1/mentors/{world.fr.mentor_id}/budget", headers=mentee)).status_code == 404
    for url in reads(world, world.de, world.de_session):
        assert (await env.client.get(url, headers=mentee)).status_code == 404, url
    await refused(env, mentee, world, 404)
    everything = (await env.client.get("/v1/sessions", headers=mentee)).json()["items"]
    assert {s["pair_id"] for s in everything} == {str(world.fr.pair_id)}
    assert (await env.client.get("/v1/check-ins", headers=mentee)).json()["items"] == []
    mentor = env.member(world.de.mentor_id)
    assert (await env.client.get(f"/v1/mentors/{world.de.mentor_id}/budget", headers=mentor)).status_code == 200
    settings = await env.client.get(f"/v1/programmes/{world.de.programme_id}/session-settings", headers=mentor)
    assert settings.status_code == 403


async def test_another_organisation_sees_nothing(env: SessionsEnv, world: World) -> None:
    other = env.auth("hr_admin", org="org-b")
    for url in [*reads(world, world.de, world.de_session), f"/v1/programmes/{world.de.programme_id}/session-settings"]:
        assert (await env.client.get(url, headers=other)).status_code == 404, url
    await refused(env, other, world, 404)
    assert (await env.client.get("/v1/sessions", headers=other)).json()["items"] == []
    # A participant of another organisation with a matching id is no member either.
    impostor = env.member(world.de.mentee_id, org="org-b")
    assert (await env.client.get(f"/v1/sessions/{world.de_session['session_id']}", headers=impostor)).status_code == 404


async def test_ops_gets_metrics_and_nothing_else(env: SessionsEnv, world: World) -> None:
    ops = env.auth("ops")
    for url in [*reads(world, world.de, world.de_session), "/v1/sessions", "/v1/budgets", "/v1/check-ins"]:
        response = await env.client.get(url, headers=ops)
        assert response.status_code == 403, url
        assert response.headers["content-type"] == "application/problem+json"
    await refused(env, ops, world, 403)
    metrics = await env.client.get("/metrics")
    assert metrics.status_code == 200 and "binome_http_requests_total" in metrics.text


async def test_a_service_reads_every_country_but_changes_nothing(env: SessionsEnv, world: World) -> None:
    service = env.auth("service")
    for url in reads(world, world.de, world.de_session):
        assert (await env.client.get(url, headers=service)).status_code == 200, url
    await refused(env, service, world, 403)


async def test_no_token_is_a_401(env: SessionsEnv, world: World) -> None:
    response = await env.client.get(f"/v1/sessions/{world.de_session['session_id']}")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
