"""The committee digest on the real stack: every service of the platform on
PostgreSQL and the broker, a real SMTP server (aiosmtpd) in the test
process, and the platform clock moved forward.

Pairs formed today with no session held turn at risk 22 days later (the
rule: a first session within 21 days). Insights' daily evaluation records
``PairNeedsAttention`` once per pair; notifications sends each committee one
digest for the day, in its language, listing its country's pairs only; the
next day, with nothing changed, nothing more. The contacts API is isolated
by organisation, country and role, and validates what it keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import asyncpg
import pytest

from services.insights.health.watch import HealthWatch
from services.notifications.adapters.rendering import day
from services.notifications.domain.kinds import Kind
from services.notifications.service_layer.committees import Contacts
from services.notifications.service_layer.digest import WINDOW
from services.notifications.service_layer.messages import Messages
from tests.support.enrollment import mentee, mentor
from tests.support.kafka import wait_for
from tests.support.mailbox import Mailbox, subject_of, text_of
from tests.support.matching import QUALIFIED
from tests.support.world import OTHER_ORG, World, platform_world

pytestmark = pytest.mark.integration

FR_COMMITTEE = ["comite-fr@example.com", "rh-fr@example.com"]
DE_COMMITTEE = ["komitee-de@example.com"]
ES_COMMITTEE = ["comite-es@example.com"]  # a country with no pair
CONTACTS = "/v1/committees/{}/contacts"
DIGEST = "committee_digest"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@pytest.fixture(scope="module")
async def world(
    pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, tmp_path_factory, mailbox: Mailbox
) -> AsyncIterator[World]:
    async with platform_world(
        pool, database_url, kafka_bootstrap, tmp_path_factory.mktemp("digest"),
        smtp_url=mailbox.url, mail_from="binome@example.org", notifications_poll_interval_s=0.1,
        scheduler_interval_s=0.2,
    ) as w:
        yield w


async def problem(world: World, method: str, path: str, headers: dict[str, str], status: int, **kwargs) -> str:
    response = await world.call("notifications", method, path, headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.text


async def test_committee_contacts_are_isolated_validated_and_kept(world: World) -> None:
    body = {"addresses": FR_COMMITTEE, "language": "fr", "time_zone": "Europe/Paris"}
    put = await world.ok("notifications", "PUT", CONTACTS.format("fr"), body)
    assert put["country"] == "FR" and put["addresses"] == FR_COMMITTEE and put["updated_at"] is not None
    # The FR committee reads its own; another country's is a 404; it sets none (403).
    own = await world.ok("notifications", "GET", CONTACTS.format("FR"), headers=world.committee("FR"))
    assert own == put
    await problem(world, "GET", CONTACTS.format("FR"), world.committee("DE"), 404)
    await problem(world, "PUT", CONTACTS.format("FR"), world.committee("FR"), 403, json=body)
    await problem(world, "GET", CONTACTS.format("FR"), world.participant(world.fr.mentee_id), 403)
    # Another organisation has its own FR committee, with no address: ours is not visible.
    theirs = await world.ok("notifications", "GET", CONTACTS.format("FR"), headers=world.auth("hr_admin", org=OTHER_ORG))
    assert theirs["addresses"] == [] and theirs["committee_id"] != put["committee_id"]
    # Bad input: a 422 naming the field, nothing changed.
    for field, bad in (("addresses", {**body, "addresses": ["not an address"]}),
                       ("addresses", {**body, "addresses": ["a@example.com", "A@example.com"]}),
                       ("time_zone", {**body, "time_zone": "Mars/Olympus"}),
                       ("language", {**body, "language": "xx"})):
        assert field in await problem(world, "PUT", CONTACTS.format("FR"), world.auth(), 422, json=bad)
    assert "country" in await problem(world, "PUT", CONTACTS.format("F1"), world.auth(), 422, json=body)
    assert await world.ok("notifications", "GET", CONTACTS.format("FR")) == put
    # Audited (libs/audit): who set them is in the trail; the addresses are in no event and no audit record.
    await world.platform.audit_spool.ship()  # the records this process spooled (libs/audit/spool.py)
    audit = await world.platform.pool.fetch(
        "SELECT subject, status FROM notifications.audit_log WHERE action = 'PUT /v1/committees/{country}/contacts'"
    )
    assert ("hr-1", 200) in {(a["subject"], a["status"]) for a in audit}, audit
    for table in ("events", "outbox", "audit_log"):
        rows = await world.platform.pool.fetch(f"SELECT r::text AS row FROM notifications.{table} r")
        assert not any(address in r["row"] for r in rows for address in FR_COMMITTEE), table


async def second_french_pair(world: World) -> str:
    path = f"/v1/waves/{world.fr.wave_id}/participants"
    await world.ok("enrollment", "POST", path, mentee("DIG-FR-E", time_zone="Europe/Paris"))
    mentor_id = (await world.ok("enrollment", "POST", path, mentor("DIG-FR-M", time_zone="Europe/Paris", capacity=1)))[
        "participant_id"
    ]
    await world.ok("enrollment", "POST", f"/v1/participants/{mentor_id}/qualification", QUALIFIED)
    await world.settled()
    run = await world.ok("matching", "POST", "/v1/runs", {"wave_ids": [world.fr.wave_id]})
    assert len(run["pairs"]) == 1, run  # one free mentor: one more FR pair
    pair_id = run["pairs"][0]["pair_id"]
    assert (await world.ok("matching", "POST", f"/v1/pairs/{pair_id}:confirm"))["status"] == "formed"
    await world.settled()
    return pair_id


async def evaluated(world: World) -> asyncpg.Record:
    """Insights' evaluation of the platform clock's day, once it ran; then every event has flowed."""
    today = world.platform.clock().date()
    row = await wait_for(lambda: world.platform.pool.fetchrow(
        "SELECT * FROM insights.health_evaluations WHERE evaluated_on = $1", today))
    await world.settled()
    return row


async def digests(world: World) -> list[asyncpg.Record]:
    return await world.platform.pool.fetch("SELECT * FROM notifications.messages WHERE kind = $1", DIGEST)


async def test_pairs_turning_at_risk_reach_their_committee_in_one_digest_a_day(world: World, mailbox: Mailbox) -> None:
    for country, addresses, language, zone in (("FR", FR_COMMITTEE, "fr", "Europe/Paris"),
                                               ("DE", DE_COMMITTEE, "de", "Europe/Berlin"),
                                               ("ES", ES_COMMITTEE, "es", "Europe/Madrid")):
        await world.ok("notifications", "PUT", CONTACTS.format(country),
                       {"addresses": addresses, "language": language, "time_zone": zone})
    new_pair = await second_french_pair(world)
    today = await evaluated(world)
    assert today["changes"] == 0  # every pair was formed today: healthy

    # 22 days later no pair has held a session: all three turn at risk, once each.
    world.platform.clock.advance(timedelta(days=22))
    turned = await evaluated(world)
    assert (turned["pairs"], turned["changes"]) == (3, 3)
    facts = await world.platform.pool.fetch(
        "SELECT stream_id AS subject, envelope->'data'->>'country' AS country FROM insights.events"
        " WHERE type = 'binome.insights.PairNeedsAttention.v1'")
    assert sorted((f["subject"], f["country"]) for f in facts) == sorted(
        [(world.fr.pair_id, "FR"), (new_pair, "FR"), (world.de.pair_id, "DE")])
    assert await digests(world) == []  # the day's pairs are collected for a while first

    world.platform.clock.advance(WINDOW + timedelta(minutes=1))
    french = await mailbox.one(to=FR_COMMITTEE[0], kind=DIGEST)
    assert all(address in str(french["To"]) for address in FR_COMMITTEE)  # one mail for the committee
    assert french["Content-Language"] == "fr"
    the_day = day(world.platform.clock(), "fr", "Europe/Paris")
    assert subject_of(french) == f"Binômes à suivre en FR : 2 ({the_day})", subject_of(french)
    text = text_of(french)
    listed = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(listed) == 2, text
    assert "- Person ISO-FR-E et Person ISO-FR-M : à risque depuis le " in text, text
    assert "pas encore de première séance" in text and "ISO-DE" not in text

    german = await mailbox.one(to=DE_COMMITTEE[0], kind=DIGEST)
    assert german["Content-Language"] == "de"
    assert subject_of(german).startswith("Tandems mit Handlungsbedarf in DE: 1 ("), subject_of(german)
    assert "- Person ISO-DE-E und Person ISO-DE-M: gefährdet seit " in text_of(german)
    assert "ISO-FR" not in text_of(german)
    assert mailbox.matching(to=ES_COMMITTEE[0]) == []  # no pair of its country turned
    assert len(mailbox.matching(kind=DIGEST)) == 2

    # The delivery log: one digest per committee, each committee sees its own.
    await wait_for(lambda: _delivered(world, 2))
    fr_log = await world.ok("notifications", "GET", f"/v1/messages?kind={DIGEST}", headers=world.committee("FR"))
    fr_contacts = await world.ok("notifications", "GET", CONTACTS.format("FR"))
    assert [(m["country"], m["recipient_id"], m["status"]) for m in fr_log["items"]] == [
        ("FR", fr_contacts["committee_id"], "delivered")]
    de_log = await world.ok("notifications", "GET", f"/v1/messages?kind={DIGEST}", headers=world.committee("DE"))
    assert [m["country"] for m in de_log["items"]] == ["DE"]

    # Once per (committee, day): the day's digest queued again is nothing new.
    notifications = world.platform.contexts["notifications"]
    messages = Messages(notifications.store, "binome@example.org", world.platform.clock)
    (job,) = [j for j in await world.platform.pool.fetch(
        "SELECT job_id FROM notifications.due_jobs WHERE kind = $1", DIGEST) if ":FR:" in j["job_id"]]
    async with world.platform.pool.acquire() as conn:
        committee = await Contacts("notifications").committee(conn, "org-iso", "FR")
        assert committee is not None
        again = await messages.to_committee(conn, committee=committee, kind=Kind.COMMITTEE_DIGEST,
                                            source_event_id=job["job_id"],
                                            values={"country": "FR", "day": "-", "pairs": []})
    assert again == 0

    # The next day, nothing changed: no new fact, no new digest; a second
    # instance's evaluation of the same day does nothing.
    world.platform.clock.advance(timedelta(days=1))
    assert (await evaluated(world))["changes"] == 0
    second = HealthWatch(world.platform.pool, world.platform.contexts["insights"].store)
    assert await second.run_due(world.platform.clock()) == 0
    world.platform.clock.advance(WINDOW + timedelta(minutes=1))
    await world.settled()
    assert len(await digests(world)) == 2
    assert len(mailbox.matching(kind=DIGEST)) == 2


async def _delivered(world: World, n: int) -> bool:
    rows = await digests(world)
    return len(rows) == n and all(r["status"] == "delivered" and r["body"] is None for r in rows)
