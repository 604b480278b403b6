"""The sessions API on real PostgreSQL and a real broker: pairs learned from
matching's events through the broker, then every scheduling rule (overlap,
past, not formed, dissolved, duration), the life cycle and its 409s, optimistic
concurrency, idempotency, check-ins and lists. Bad input is problem+json and
stores nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from libs.events import registry
from tests.support.problems import fields, problem
from tests.support.sessions import NOW, SessionsEnv, schedule_body, sessions_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[SessionsEnv]:
    async for environment in sessions_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("sessions-api")):
        yield environment


@pytest.fixture(autouse=True)
def reset_clock(env: SessionsEnv) -> None:
    env.clock.now = NOW


def at(env: SessionsEnv, hours: float) -> str:
    return (env.clock.now + timedelta(hours=hours)).isoformat()


# --------------------------------------------------------------------------- pairs from matching


async def test_pairs_come_from_matching_events_through_the_broker(env: SessionsEnv) -> None:
    programme = await env.programme()
    pair = await env.form_pair(programme)
    response = await env.client.get(f"/v1/pairs/{pair.pair_id}", headers=env.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["mentee_id"]) == ("formed", str(pair.mentee_id))
    assert body["mentor_id"] == str(pair.mentor_id)
    assert body["sessions"] == {}
    await env.dissolve(pair)
    assert (await env.client.get(f"/v1/pairs/{pair.pair_id}", headers=env.auth())).json()["status"] == "dissolved"


# --------------------------------------------------------------------------- scheduling


async def test_a_member_schedules_a_session_of_its_formed_pair(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    body = schedule_body(NOW + timedelta(days=2), 45, format="in_person", planned_topics=["data_ai", "cybersecurity"])
    response = await env.post_session(pair, body, env.member(pair.mentor_id))
    assert response.status_code == 201, response.text
    session = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"].endswith(f"/v1/sessions/{session['session_id']}")
    assert (session["status"], session["scheduled_by"], session["format"]) == ("scheduled", "mentor", "in_person")
    assert session["duration_minutes"] == 45 and session["planned_topics"] == ["data_ai", "cybersecurity"]
    assert session["scheduled"]["by"]["subject"] == str(pair.mentor_id)  # who made the change
    assert (await env.client.get(f"/v1/sessions/{session['session_id']}", headers=env.auth())).json() == session

    [stored] = await env.store.read_stream(session["session_id"])
    assert stored.type == "binome.sessions.SessionScheduled.v1" and stored.country == "FR" and stored.tenant == "org-a"
    assert registry.load(stored).pair_id == pair.pair_id


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"duration_minutes": 14}, ["body.duration_minutes"]),
        ({"duration_minutes": 121}, ["body.duration_minutes"]),
        ({"format": "carrier_pigeon"}, ["body.format"]),
        ({"starts_at": "2026-03-04T10:00:00"}, ["body.starts_at"]),  # no offset: ambiguous
        ({"starts_at": "2026-03-01T10:00:00+00:00"}, ["body.starts_at"]),  # the past
        ({"planned_topics": ["astrology"]}, ["body.planned_topics.0"]),  # not a programme theme
        ({"planned_topics": ["Not A Code"]}, ["body.planned_topics.0"]),
        ({"room": "B12"}, ["body.room"]),  # unknown fields are forbidden
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
    env: SessionsEnv, change: dict[str, Any], expected: list[str]
) -> None:
    pair = await env.form_pair(await env.programme())
    before = await env.count_events()
    body = {**schedule_body(NOW + timedelta(days=2)), **change}
    assert fields(problem(await env.post_session(pair, body), 422)) == expected
    assert await env.count_events() == before


async def test_duration_bounds_are_inclusive(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    assert (await env.schedule(pair, 24, 15))["duration_minutes"] == 15
    assert (await env.schedule(pair, 48, 120))["duration_minutes"] == 120


async def test_a_session_starting_now_is_in_the_past(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    assert fields(problem(await env.post_session(pair, schedule_body(NOW)), 422)) == ["body.starts_at"]


async def test_no_overlap_for_a_person_across_all_its_pairs(env: SessionsEnv) -> None:
    programme = await env.programme()
    first = await env.form_pair(programme)
    second = await env.form_pair(programme, mentor_id=first.mentor_id)  # the mentor's second mentee
    taken = await env.schedule(first, 24, 60)
    before = await env.count_events()

    clash = await env.post_session(second, schedule_body(NOW + timedelta(hours=24, minutes=30), 60))
    body = problem(clash, 409)
    assert body["type"] == "urn:binome:problem:time-taken"
    assert (body["participant_id"], body["conflicting_session_id"]) == (str(first.mentor_id), taken["session_id"])
    assert await env.count_events() == before

    assert (await env.schedule(second, 25, 30))["status"] == "scheduled"  # right after: free
    await env.act(taken, "cancel", {"reason": "x"})
    assert (await env.schedule(second, 24, 60))["status"] == "scheduled"  # a cancelled session frees its slot


async def test_the_same_slot_asked_twice_at_once_is_given_once(env: SessionsEnv) -> None:
    programme = await env.programme()
    first = await env.form_pair(programme)
    second = await env.form_pair(programme, mentor_id=first.mentor_id)
    starts = NOW + timedelta(days=3)
    responses = await asyncio.gather(*(env.post_session(p, schedule_body(starts)) for p in (first, second)))
    assert sorted(r.status_code for r in responses) == [201, 409]


@pytest.mark.parametrize("end", ["dissolve", "complete"])
async def test_only_a_formed_pair_schedules(env: SessionsEnv, end: str) -> None:
    pair = await env.form_pair(await env.programme())
    leftover = await env.schedule(pair, 24)
    await getattr(env, end)(pair)
    before = await env.count_events()
    response = await env.post_session(pair, schedule_body(NOW + timedelta(days=5)), env.auth())
    assert problem(response, 409)["type"] == "urn:binome:problem:conflict"
    assert "formed" in response.json()["detail"]
    problem(await env.act(leftover, "move", {"starts_at": at(env, 30)}), 409)
    assert await env.count_events() == before
    # The leftover session of the ended pair no longer blocks the mentor's time.
    other = await env.form_pair(pair.programme_id, mentor_id=pair.mentor_id)
    assert (await env.schedule(other, 24))["status"] == "scheduled"


async def test_an_unknown_pair_is_a_404(env: SessionsEnv) -> None:
    response = await env.client.post(
        "/v1/pairs/00000000-0000-4000-8000-000000000000/sessions",
        json=schedule_body(NOW + timedelta(days=1)),
        headers=env.auth(),
    )
    problem(response, 404)


# --------------------------------------------------------------------------- the life cycle


async def test_move_checks_the_future_the_calendar_and_if_match(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    session = await env.schedule(pair, 24)
    other = await env.schedule(pair, 48)
    problem(await env.act(session, "move", {"starts_at": at(env, -1)}), 422)
    clash = await env.act(session, "move", {"starts_at": at(env, 47.5)})
    assert problem(clash, 409)["conflicting_session_id"] == other["session_id"]
    stale = await env.act(session, "move", {"starts_at": at(env, 30)}, {**env.auth(), "If-Match": '"7"'})
    assert problem(stale, 412)["type"] == "urn:binome:problem:stale-version"

    as_mentor = {**env.member(pair.mentor_id), "If-Match": '"1"'}
    moved = await env.act(session, "move", {"starts_at": at(env, 24.5), "duration_minutes": 90}, as_mentor)
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert moved.headers["etag"] == '"2"' and body["duration_minutes"] == 90  # may overlap its own old slot
    assert body["moves"][0]["moved_by"] == "mentor" and body["moves"][0]["previous_starts_at"] == session["starts_at"]


async def test_two_changes_from_the_same_version_one_wins(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    session = await env.schedule(pair, 24)
    headers = {**env.auth(), "If-Match": '"1"'}
    responses = await asyncio.gather(
        env.act(session, "move", {"starts_at": at(env, 30)}, headers),
        env.act(session, "move", {"starts_at": at(env, 40)}, headers),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[1] in (409, 412), [r.text for r in responses]
    assert len(await env.store.read_stream(session["session_id"])) == 2


async def test_cancel_says_how_late_and_ends_the_session(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    early, late = await env.schedule(pair, 48), await env.schedule(pair, 72)
    env.clock.now = NOW + timedelta(hours=70)  # 2 h before the second one
    response = await env.act(late, "cancel", {"reason": "client visit"}, env.member(pair.mentor_id))
    assert response.status_code == 200, response.text
    cancellation = response.json()["cancellation"]
    assert (cancellation["cancelled_by"], cancellation["notice_hours"], cancellation["late"]) == ("mentor", 2.0, True)
    assert cancellation["reason"] == "client visit" and cancellation["by"]["subject"] == str(pair.mentor_id)
    env.clock.now = NOW
    on_time = await env.act(early, "cancel", {"reason": "x"})
    assert on_time.json()["cancellation"]["late"] is False and on_time.json()["cancellation"]["cancelled_by"] == "hr"

    before = await env.count_events()
    for action, body in (("cancel", {"reason": "again"}), ("mark-held", {"actual_minutes": 30})):
        assert "cancelled" in problem(await env.act(late, action, body), 409)["detail"]
    problem(await env.act(early, "cancel", {"reason": ""}), 422)
    assert await env.count_events() == before


async def test_held_and_no_show_only_once_started(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    first, second = await env.schedule(pair, 24), await env.schedule(pair, 48)
    held = {"actual_minutes": 55, "preparation_minutes": 20, "topics_covered": ["data_ai"], "note": "Showed a demo."}
    assert "not started" in problem(await env.act(first, "mark-held", held), 409)["detail"]

    env.clock.now = NOW + timedelta(hours=26)
    response = await env.act(first, "mark-held", held, env.member(pair.mentee_id))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "held" and body["held"]["sequence_in_pair"] == 1
    assert body["held"]["note"] == "Showed a demo." and body["held"]["preparation_minutes"] == 20
    problem(await env.act(first, "mark-no-show", {"absent": "mentor"}), 409)
    problem(await env.act(first, "mark-held", held), 409)

    env.clock.now = NOW + timedelta(hours=50)
    assert fields(problem(await env.act(second, "mark-no-show", {"absent": "hr"}), 422)) == ["body.absent"]
    missed = await env.act(second, "mark-no-show", {"absent": "mentor"}, env.member(pair.mentee_id))
    assert missed.json()["no_show"] | {"at": None, "by": None} == {
        "absent": "mentor",
        "reported_by": "mentee",
        "at": None,
        "by": None,
    }
    pair_doc = (await env.client.get(f"/v1/pairs/{pair.pair_id}", headers=env.auth())).json()
    assert pair_doc["sessions"] == {"held": 1, "no_show": 1}


async def test_held_input_is_checked(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    session = await env.schedule(pair, 1)
    env.clock.now = NOW + timedelta(hours=3)
    before = await env.count_events()
    body = {"actual_minutes": 0, "preparation_minutes": -5, "topics_covered": ["astrology"]}
    response = await env.act(session, "mark-held", body)
    assert fields(problem(response, 422)) == ["body.actual_minutes", "body.preparation_minutes"]
    response = await env.act(session, "mark-held", {"actual_minutes": 30, "topics_covered": ["astrology"]})
    assert fields(problem(response, 422)) == ["body.topics_covered.0"]
    assert await env.count_events() == before


async def test_idempotency_key_schedules_once(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    headers = {**env.member(pair.mentee_id), "Idempotency-Key": "schedule-once-1"}
    body = schedule_body(NOW + timedelta(days=4))
    first = await env.post_session(pair, body, headers)
    before = await env.count_events()
    again = await env.post_session(pair, body, headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert await env.count_events() == before


# --------------------------------------------------------------------------- check-ins


async def test_members_check_in_on_their_formed_pair(env: SessionsEnv) -> None:
    pair = await env.form_pair(await env.programme())
    response = await env.check_in(pair, {"mood": 4, "blockers": "Calendar", "next_step": "Try the data tool"})
    assert response.status_code == 201, response.text
    check_in = response.json()
    assert (check_in["member"], check_in["mood"]) == ("mentee", 4)
    assert check_in["recorded_by"]["subject"] == str(pair.mentee_id)
    assert response.headers["location"].endswith(f"/v1/check-ins/{check_in['check_in_id']}")
    await env.check_in(pair, {"mood": 2}, env.member(pair.mentor_id))

    before = await env.count_events()
    for mood in (0, 6):
        assert fields(problem(await env.check_in(pair, {"mood": mood}), 422)) == ["body.mood"]
    problem(await env.check_in(pair, {"mood": 3}, env.auth()), 403)
    stranger = env.member(pair.pair_id)  # a participant id that is not in the pair
    problem(await env.check_in(pair, {"mood": 3}, stranger), 404)
    assert await env.count_events() == before

    listed = (await env.client.get(f"/v1/check-ins?pair_id={pair.pair_id}", headers=env.auth())).json()["items"]
    assert [c["member"] for c in listed] == ["mentee", "mentor"]  # in the order they were recorded
    mentor_only = await env.client.get(f"/v1/check-ins?pair_id={pair.pair_id}&member=mentor", headers=env.auth())
    assert [c["mood"] for c in mentor_only.json()["items"]] == [2]

    await env.complete(pair)
    problem(await env.check_in(pair, {"mood": 3}), 409)


# --------------------------------------------------------------------------- lists


async def test_a_persons_sessions_across_pairs_in_time_order_with_cursors(env: SessionsEnv) -> None:
    programme = await env.programme()
    first = await env.form_pair(programme)
    second = await env.form_pair(programme, mentor_id=first.mentor_id)
    for hours in (72, 24, 120):
        await env.schedule(first, hours)
    for hours in (48, 96):
        await env.schedule(second, hours)

    mentors = f"/v1/sessions?participant_id={first.mentor_id}"
    starts, url = [], f"{mentors}&limit=2"
    while url:
        page = (await env.client.get(url, headers=env.auth())).json()
        assert len(page["items"]) <= 2
        starts += [s["starts_at"] for s in page["items"]]
        url = f"{mentors}&limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert len(starts) == 5 and starts == sorted(starts)

    of_pair = (await env.client.get(f"/v1/sessions?pair_id={second.pair_id}", headers=env.auth())).json()["items"]
    assert len(of_pair) == 2 and {s["pair_id"] for s in of_pair} == {str(second.pair_id)}
    window = await env.client.get(f"{mentors}&from=2026-03-04&to=2026-03-06", headers=env.auth())
    assert [s["starts_at"][:10] for s in window.json()["items"]] == ["2026-03-04", "2026-03-05"]
    page = (await env.client.get(f"{mentors}&limit=1", headers=env.auth())).json()
    other_filters = f"/v1/sessions?pair_id={first.pair_id}&cursor={page['next_cursor']}"
    assert fields(problem(await env.client.get(other_filters, headers=env.auth()), 422)) == ["query.cursor"]
    cancelled = await env.client.get(f"{mentors}&status=cancelled", headers=env.auth())
    assert cancelled.json()["items"] == []


async def test_openapi_documents_every_route_with_problem_responses(env: SessionsEnv) -> None:
    paths = (await env.client.get("/openapi.json")).json()["paths"]
    expected = {
        "/v1/pairs/{pair_id}": {"get"},
        "/v1/pairs/{pair_id}/sessions": {"post"},
        "/v1/pairs/{pair_id}/check-ins": {"post"},
        "/v1/sessions": {"get"},
        "/v1/sessions/{session_id}": {"get"},
        "/v1/sessions/{session_id}:move": {"post"},
        "/v1/sessions/{session_id}:cancel": {"post"},
        "/v1/sessions/{session_id}:mark-held": {"post"},
        "/v1/sessions/{session_id}:mark-no-show": {"post"},
        "/v1/check-ins": {"get"},
        "/v1/check-ins/{check_in_id}": {"get"},
        "/v1/budgets": {"get"},
        "/v1/mentors/{mentor_id}/budget": {"get"},
        "/v1/programmes/{programme_id}/session-settings": {"get", "put"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) >= methods, path
    schedule = paths["/v1/pairs/{pair_id}/sessions"]["post"]
    assert "application/problem+json" in schedule["responses"]["409"]["content"]
