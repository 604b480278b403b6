"""GDPR in the sessions service, on the real stack: an erased participant's
free text (session notes, cancellation reasons, check-in blockers and next
steps) is dropped in every pair it was in, and stays dropped when the read
tables are rebuilt from the log; a pair whose notes expired loses its free
text the same way; a participant's export holds its pairs, sessions,
check-ins and time entries, for the global HR admin of its organisation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from libs.auth.principal import HR_ADMIN, Principal
from libs.events.contexts.enrollment import ParticipantErased, Role
from libs.events.contexts.matching import PairNotesExpired, PairRef
from libs.gdpr.personal import ERASED
from services.sessions.bootstrap import Sessions
from services.sessions.service_layer.export import Export, SessionsExport
from tests.support.gdpr_export import assert_export_complete
from tests.support.kafka import wait_for
from tests.support.sessions import MATCHING_ACTOR, NOW, ORG, PairIds, SessionsEnv, sessions_env

pytestmark = pytest.mark.integration

CANARY = "canary-5e55-10a5"


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[SessionsEnv]:
    async for environment in sessions_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("sessions-gdpr")):
        yield environment


@pytest.fixture(autouse=True)
def reset_clock(env: SessionsEnv) -> None:
    env.clock.now = NOW


async def with_free_text(env: SessionsEnv, pair: PairIds, tag: str) -> None:
    """A held session with a note, a cancelled one with a reason, a check-in
    of each member; every free text carries the canary and ``tag``. Leaves the
    clock after the held session."""
    start = env.clock.now
    held, cancelled = await env.schedule(pair, 1), await env.schedule(pair, 48)
    cancel = await env.act(cancelled, "cancel", {"reason": f"sick {CANARY} {tag}"}, env.member(pair.mentor_id))
    assert cancel.status_code == 200, cancel.text
    env.clock.now = start + timedelta(hours=3)
    body = {"actual_minutes": 50, "preparation_minutes": 10, "topics_covered": ["data_ai"], "note": f"{CANARY} {tag}"}
    assert (await env.act(held, "mark-held", body)).status_code == 200
    for member in (pair.mentee_id, pair.mentor_id):
        check_in = {"mood": 4, "blockers": f"blocked {CANARY} {tag}", "next_step": f"next {CANARY} {tag}"}
        response = await env.check_in(pair, check_in, {**env.member(member), "Idempotency-Key": f"ci-{pair.pair_id}-{member}"})
        assert response.status_code == 201, response.text


async def free_text(env: SessionsEnv, pair: PairIds) -> list[str]:
    """Every string of the pair's session and check-in documents."""
    rows = await env.pool.fetch(
        f"""SELECT doc::text FROM {env.schema}.sessions WHERE pair_id = $1
            UNION ALL SELECT doc::text FROM {env.schema}.check_ins WHERE pair_id = $1""",
        pair.pair_id,
    )
    return [r[0] for r in rows]


async def canary_in(env: SessionsEnv, tag: str) -> bool:
    rows = await env.pool.fetch(
        f"""SELECT t::text FROM {env.schema}.sessions t UNION ALL SELECT t::text FROM {env.schema}.check_ins t
            UNION ALL SELECT t::text FROM {env.schema}.idempotency_keys t""",
    )
    return any(f"{CANARY} {tag}" in r[0] or (tag in r[0] and CANARY in r[0]) for r in rows)


def erased_event(participant_id: uuid.UUID, pair: PairIds, role: Role) -> ParticipantErased:
    return ParticipantErased(
        actor=MATCHING_ACTOR,
        participant_id=participant_id,
        programme_id=pair.programme_id,
        wave_id=pair.wave_id,
        country=pair.country,
        role=role,
    )


def sessions_docs(part: dict[str, Any]) -> list[str]:
    return sorted(s["status"] for s in part["sessions"])


async def test_an_erased_participant_loses_its_free_text_in_every_pair(env: SessionsEnv) -> None:
    programme = await env.programme()
    mentor = uuid.uuid4()
    first = await env.form_pair(programme, mentor_id=mentor)
    second = await env.form_pair(programme, mentor_id=mentor)  # the mentor has two mentees
    other = await env.form_pair(programme)  # nobody here is erased
    await with_free_text(env, first, "first")
    env.clock.now = NOW + timedelta(days=10)
    await with_free_text(env, second, "second")
    env.clock.now = NOW + timedelta(days=20)
    await with_free_text(env, other, "other")

    await env._emit("enrollment", str(mentor), "org-a", "FR", erased_event(mentor, first, Role.MENTOR))

    async def dropped() -> bool:
        return not await canary_in(env, "first") and not await canary_in(env, "second")

    await wait_for(dropped)
    for pair in (first, second):
        session_docs = await env.client.get(f"/v1/sessions?pair_id={pair.pair_id}", headers=env.auth())
        items = session_docs.json()["items"]
        held = next(s for s in items if s["status"] == "held")
        cancelled = next(s for s in items if s["status"] == "cancelled")
        assert held["held"]["note"] == ERASED and held["held"]["actual_minutes"] == 50  # figures stay
        assert cancelled["cancellation"]["reason"] == ERASED and cancelled["cancellation"]["notice_hours"] > 0
        check_ins = (await env.client.get(f"/v1/check-ins?pair_id={pair.pair_id}", headers=env.auth())).json()
        assert [(c["blockers"], c["next_step"], c["mood"]) for c in check_ins["items"]] == [(ERASED, ERASED, 4)] * 2
    assert await canary_in(env, "other")  # another pair keeps its notes

    # Rebuilt from the log (where, until the log is sealed, the text is still
    # plain), the read tables drop it again.
    await Sessions(env.pool, env.store).rebuild_read_tables()
    assert not await canary_in(env, "first") and not await canary_in(env, "second")
    assert await canary_in(env, "other")


async def test_expired_pair_notes_are_dropped_from_the_read_tables(env: SessionsEnv) -> None:
    programme = await env.programme()
    expiring, kept = await env.form_pair(programme), await env.form_pair(programme)
    await with_free_text(env, expiring, "expiring")
    env.clock.now = NOW + timedelta(days=10)
    await with_free_text(env, kept, "kept")
    await env.complete(expiring)
    people = PairRef(
        mentee_id=expiring.mentee_id, mentor_id=expiring.mentor_id, mentee_wave_id=expiring.wave_id,
        mentor_wave_id=expiring.wave_id, mentee_country="FR", mentor_country="FR",
    )  # fmt: skip
    expired = PairNotesExpired(
        actor=MATCHING_ACTOR, pair_id=expiring.pair_id, programme_id=programme, wave_id=expiring.wave_id,
        country="FR", people=people, ended_at=datetime(2026, 3, 20, tzinfo=NOW.tzinfo), retention_days=365,
    )  # fmt: skip
    await env._emit("matching", str(expiring.pair_id), "org-a", "FR", expired)

    async def dropped() -> bool:
        return not await canary_in(env, "expiring")

    await wait_for(dropped)
    assert all(CANARY not in doc for doc in await free_text(env, expiring))
    assert await canary_in(env, "kept")
    await Sessions(env.pool, env.store).rebuild_read_tables()
    assert not await canary_in(env, "expiring") and await canary_in(env, "kept")


async def test_the_export_holds_the_participants_sessions_check_ins_and_time(env: SessionsEnv) -> None:
    programme = await env.programme()
    pair = await env.form_pair(programme)
    await with_free_text(env, pair, "export")
    moved = await env.schedule(pair, 72)
    later = (env.clock.now + timedelta(hours=96)).isoformat()
    assert (await env.act(moved, "move", {"starts_at": later}, env.member(pair.mentee_id))).status_code == 200

    mentor = await env.client.get(f"/v1/participants/{pair.mentor_id}/export", headers=env.auth())
    assert mentor.status_code == 200, mentor.text
    body = mentor.json()
    assert body["service"] == "sessions" and body["participant_id"] == str(pair.mentor_id)
    part = body["data"]
    assert [p["pair_id"] for p in part["pairs"]] == [str(pair.pair_id)]
    assert sessions_docs(part) == ["cancelled", "held", "scheduled"]
    # Every field exported is declared, and none of what the service collected is lost.
    unfiltered = await Export(env.schema).collect(env.pool, Principal("hr-1", ORG, {HR_ADMIN}), pair.mentor_id)
    assert unfiltered is not None and any(s["moves"] for s in unfiltered["sessions"])
    assert_export_complete("sessions", body, unfiltered, SessionsExport)
    assert [c["member"] for c in part["check_ins"]] == ["mentor"]  # its own check-ins
    assert part["check_ins"][0]["blockers"] == f"blocked {CANARY} export"
    [month] = part["time_entries"]
    assert (month["month"], month["total_minutes"]) == ("2026-03", 60)

    mentee = (await env.client.get(f"/v1/participants/{pair.mentee_id}/export", headers=env.auth())).json()["data"]
    assert [c["member"] for c in mentee["check_ins"]] == ["mentee"] and mentee["time_entries"] == []

    url = f"/v1/participants/{pair.mentee_id}/export"
    assert (await env.client.get(url, headers=env.auth("regional_committee", countries=["FR"]))).status_code == 403
    assert (await env.client.get(url, headers=env.member(pair.mentee_id))).status_code == 403
    assert (await env.client.get(url, headers=env.auth("hr_admin", org="org-b"))).status_code == 404
    unknown = await env.client.get(f"/v1/participants/{uuid.uuid4()}/export", headers=env.auth())
    assert unknown.status_code == 404
