"""Notifications on the real stack: every service of the platform on
PostgreSQL and the broker, and a real SMTP server (aiosmtpd) in the test
process. What people receive is read back from that server: the language,
the iCalendar part parsed with icalendar (METHOD, UID, SEQUENCE), exactly
one message per (event, recipient, kind), nothing for an erased person, the
24 h notice due on the platform clock run once by two schedulers, and a mail
server outage that delays delivery without duplicating it."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest

from libs.auth.principal import HR_ADMIN, Principal
from libs.runtime.clock import PlatformClock
from services.notifications.domain.kinds import Kind
from services.notifications.service_layer.export import Export, NotificationsExport
from services.notifications.service_layer.messages import Meeting, Messages
from services.notifications.service_layer.scheduler import Scheduler
from tests.support.gdpr_export import assert_export_complete
from tests.support.kafka import wait_for
from tests.support.mailbox import Mailbox, invite_of, subject_of, text_of
from tests.support.world import ORG, OTHER_ORG, World, platform_world

pytestmark = pytest.mark.integration

FR_MENTEE, FR_MENTOR = "iso-fr-e@example.com", "iso-fr-m@example.com"
DE_MENTEE, DE_MENTOR = "iso-de-e@example.com", "iso-de-m@example.com"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@pytest.fixture(scope="module")
async def world(
    pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, tmp_path_factory, mailbox: Mailbox
) -> AsyncIterator[World]:
    async with platform_world(
        pool, database_url, kafka_bootstrap, tmp_path_factory.mktemp("notifications"),
        smtp_url=mailbox.url, mail_from="binome@example.org", notifications_poll_interval_s=0.1,
        mail_max_attempts=3,
    ) as w:
        yield w


def uid_and_sequence(calendar) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    (event,) = calendar.walk("VEVENT")
    return str(event["UID"]), int(event["SEQUENCE"])


async def messages(world: World, where: str = "true", *args: object) -> list[asyncpg.Record]:
    return await world.platform.pool.fetch(f"SELECT * FROM notifications.messages WHERE {where}", *args)


async def test_a_scheduled_session_reaches_both_members_with_an_invite(world: World, mailbox: Mailbox) -> None:
    for to, other in ((FR_MENTEE, "Person ISO-FR-M"), (FR_MENTOR, "Person ISO-FR-E")):
        mail = await mailbox.one(to=to, kind="session_scheduled")
        # Their profile speaks French first: the message is French, dated in Paris time.
        assert subject_of(mail).startswith(f"Séance avec {other} le "), subject_of(mail)
        assert mail["Content-Language"] == "fr"
        assert "(Europe/Paris)" in text_of(mail)
        assert mail.get_body(preferencelist=("html",)) is not None
        calendar = invite_of(mail)
        assert str(calendar["METHOD"]) == "REQUEST"
        assert uid_and_sequence(calendar) == (f"session-{world.fr.session_id}@binome", 0)
        (event,) = calendar.walk("VEVENT")
        attendees = sorted(str(a) for a in event.get("ATTENDEE"))
        assert attendees == [f"mailto:{FR_MENTEE}", f"mailto:{FR_MENTOR}"]
        assert str(event["ORGANIZER"]) == "mailto:binome@example.org"
        assert event.decoded("DTSTART").tzinfo is not None and str(event["DTSTART"].params["TZID"]) == "Europe/Paris"
    # Delivered once, and the body is not kept after delivery.
    # Marked delivered when the delivery's transaction commits, just after the server took it.
    await wait_for(lambda: two(messages(
        world, "kind = 'session_scheduled' AND country = 'FR' AND status = 'delivered' AND body IS NULL")))


async def test_the_delivery_log_is_isolated_by_organisation_and_country(world: World) -> None:
    await wait_for(lambda: messages(world, "kind = 'session_scheduled' AND status = 'delivered'"))

    async def countries(headers: dict[str, str], query: str = "") -> set[str]:
        page = await world.ok("notifications", "GET", f"/v1/messages?limit=200{query}", headers=headers)
        return {item["country"] for item in page["items"]}

    assert await countries(world.auth()) == {"FR", "DE"}
    assert await countries(world.committee("FR")) == {"FR"}
    assert await countries(world.committee("DE"), "&kind=session_scheduled") == {"DE"}
    refused = await world.call("notifications", "GET", "/v1/messages?country=FR", world.committee("DE"))
    assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
    assert await countries(world.auth("hr_admin", org=OTHER_ORG)) == set()
    participant = await world.call("notifications", "GET", "/v1/messages", world.participant(world.fr.mentee_id))
    assert participant.status_code == 403


async def test_a_chosen_language_and_a_move_update_the_same_calendar_entry(world: World, mailbox: Mailbox) -> None:
    me = world.participant(world.de.mentee_id)
    essential = await world.call("notifications", "PUT", "/v1/preferences/me", me,
                                 json={"muted_kinds": ["session_moved"]})
    assert essential.status_code == 422 and "muted_kinds" in essential.text
    chosen = await world.ok("notifications", "PUT", "/v1/preferences/me", {"language": "de"}, headers=me)
    assert chosen["language"] == "de"
    scheduled = await mailbox.one(to=DE_MENTEE, kind="session_scheduled")
    new_start = datetime.fromisoformat(str(invite_of(scheduled).walk("VEVENT")[0].decoded("DTSTART"))) + timedelta(days=1)
    await world.ok("sessions", "POST", f"/v1/sessions/{world.de.session_id}:move", {"starts_at": new_start.isoformat()})

    mentee = await mailbox.one(to=DE_MENTEE, kind="session_moved")
    assert subject_of(mentee).startswith("Sitzung mit Person ISO-DE-M verschoben auf "), subject_of(mentee)
    assert "(Europe/Berlin)" in text_of(mentee)
    mentor = await mailbox.one(to=DE_MENTOR, kind="session_moved")
    assert mentor["Content-Language"] == "fr"  # the mentor chose nothing: its profile's first language
    for mail in (mentee, mentor):
        calendar = invite_of(mail)
        assert str(calendar["METHOD"]) == "REQUEST"
        assert uid_and_sequence(calendar) == (f"session-{world.de.session_id}@binome", 1)
        assert uid_and_sequence(invite_of(scheduled))[0] == uid_and_sequence(calendar)[0]


async def test_a_cancellation_removes_the_same_calendar_entry(world: World, mailbox: Mailbox) -> None:
    await world.ok("sessions", "POST", f"/v1/sessions/{world.fr.session_id}:cancel", {"reason": "Travelling."})
    for to in (FR_MENTEE, FR_MENTOR):
        calendar = invite_of(await mailbox.one(to=to, kind="session_cancelled"))
        assert str(calendar["METHOD"]) == "CANCEL"
        assert uid_and_sequence(calendar) == (f"session-{world.fr.session_id}@binome", 1)


async def test_the_24h_notice_is_due_on_the_platform_clock_and_runs_once_with_two_schedulers(
    world: World, mailbox: Mailbox
) -> None:
    (job,) = await world.platform.pool.fetch(
        "SELECT due_at FROM notifications.due_jobs WHERE subject_id = $1 AND done_at IS NULL", world.de.session_id
    )
    context = world.platform.contexts["notifications"]
    # Two instances' schedulers, each with the platform clock moved to just past the notice.
    clock = PlatformClock(job["due_at"] + timedelta(minutes=1) - datetime.now(job["due_at"].tzinfo))
    instances = [Scheduler(world.platform.pool, Messages(context.store, "binome@example.org", clock), clock)
                 for _ in range(2)]
    before = PlatformClock()  # the system clock: nothing due yet
    early = Scheduler(world.platform.pool, instances[0].messages, before)
    assert await early.run_due() == 0

    ran = await asyncio.gather(*(s.run_due() for s in instances))
    assert sorted(ran) == [0, 1]
    assert await asyncio.gather(*(s.run_due() for s in instances)) == [0, 0]
    reminders = await messages(world, "kind = 'session_reminder'")
    assert sorted(str(r["recipient_id"]) for r in reminders) == sorted([world.de.mentee_id, world.de.mentor_id])
    mentee = await mailbox.one(to=DE_MENTEE, kind="session_reminder")
    assert subject_of(mentee).startswith("Erinnerung: Sitzung mit Person ISO-DE-M morgen")
    await mailbox.one(to=DE_MENTOR, kind="session_reminder")


async def test_a_mail_server_outage_delays_delivery_and_delivers_once(world: World, mailbox: Mailbox) -> None:
    mailbox.stop()
    try:
        start = (datetime.now().astimezone() + timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
        body = {"starts_at": start.isoformat(), "duration_minutes": 30, "format": "remote", "planned_topics": []}
        session = await world.ok("sessions", "POST", f"/v1/pairs/{world.fr.pair_id}/sessions", body)
        refused = await wait_for(
            lambda: messages(world, "kind = 'session_scheduled' AND attempts > 0 AND status = 'queued'"), timeout=60
        )
        assert all("Connect" in r["last_error"] or "Errno" in r["last_error"] for r in refused), refused
    finally:
        mailbox.start()
    for to in (FR_MENTEE, FR_MENTOR):
        await wait_for(lambda: _async(len(mailbox.matching(to=to, kind="session_scheduled")) == 2), timeout=90)
    sent = await wait_for(lambda: two(messages(
        world, "status = 'delivered' AND source_event_id IN (SELECT event_id::text FROM sessions.events"
        " WHERE stream_id = $1)", session["session_id"])))
    assert max(r["attempts"] for r in sent) >= 2 and all(r["body"] is None for r in sent)
    await asyncio.sleep(1)  # a few more delivery passes: still one message each
    assert all(len(mailbox.matching(to=to, kind="session_scheduled")) == 2 for to in (FR_MENTEE, FR_MENTOR))


async def test_the_gdpr_export_declares_every_field_it_exports(world: World, mailbox: Mailbox) -> None:
    person = world.fr.mentee_id
    await world.ok("notifications", "PUT", "/v1/preferences/me", {"language": "fr"}, headers=world.participant(person))
    await wait_for(lambda: messages(world, "recipient_id = $1 AND finished_at IS NOT NULL", uuid.UUID(person)))
    answer = await world.ok("notifications", "GET", f"/v1/participants/{person}/export")
    data = answer["data"]
    assert data["recipient"] and data["preferences"] and data["messages"]  # every part holds something
    unfiltered = await Export("notifications").collect(
        world.platform.pool, Principal("hr-1", ORG, {HR_ADMIN}), uuid.UUID(person)
    )
    assert unfiltered is not None
    assert_export_complete("notifications", answer, unfiltered, NotificationsExport)


async def test_an_erased_person_receives_nothing_more(world: World, mailbox: Mailbox) -> None:
    export = f"/v1/participants/{world.de.mentor_id}/export"
    before = (await world.ok("notifications", "GET", export))["data"]
    assert before["recipient"]["email"] == DE_MENTOR and before["messages"]  # the GDPR export holds it
    context = world.platform.contexts["notifications"]
    queue = Messages(context.store, "binome@example.org", PlatformClock())

    async def remind(source: str, *, waiting: bool = False) -> int:
        async with world.platform.pool.acquire() as conn, conn.transaction():
            queued = await queue.to_pair(
                conn, organisation="org-iso", country="DE", kind=Kind.SESSION_REMINDER, source_event_id=source,
                members=(uuid.UUID(world.de.mentee_id), uuid.UUID(world.de.mentor_id)),
                meeting=Meeting(uuid.UUID(world.de.session_id), datetime.now().astimezone(), 45, 0),
            )
            if waiting:  # as if the mail server had refused them: their next try is in an hour
                await conn.execute("UPDATE notifications.messages SET next_attempt_at = now() + interval '1 hour'"
                                   " WHERE source_event_id = $1", source)
            return queued

    # A message waiting for its next try when the erasure comes is withdrawn, its body dropped.
    assert await remind("test:before-erasure", waiting=True) == 2
    await world.ok("enrollment", "POST", f"/v1/participants/{world.de.mentor_id}:erase")
    (withdrawn,) = await wait_for(
        lambda: messages(world, "recipient_id = $1 AND status = 'withdrawn'", world.de.mentor_id)
    )
    assert withdrawn["body"] is None and withdrawn["source_event_id"] == "test:before-erasure"
    # The mentee's copy names the erased mentor: withdrawn too.
    (partner,) = await messages(world, "source_event_id = 'test:before-erasure' AND recipient_id = $1",
                                uuid.UUID(world.de.mentee_id))
    assert (partner["status"], partner["body"]) == ("withdrawn", None)
    assert not await world.platform.pool.fetch(
        "SELECT 1 FROM notifications.recipients WHERE participant_id = $1", world.de.mentor_id
    )
    # Anything about the pair now reaches the mentee only.
    assert await remind("test:after-erasure") == 1
    await wait_for(lambda: _async(len(mailbox.matching(to=DE_MENTEE, kind="session_reminder")) == 2), timeout=60)
    assert len(mailbox.matching(to=DE_MENTOR, kind="session_reminder")) == 1  # the one before the erasure
    after = (await world.ok("notifications", "GET", export))["data"]
    # Metadata only: what was sent before, and the withdrawn message.
    assert after["recipient"] is None and after["messages"][:-1] == before["messages"]
    assert after["messages"][-1]["status"] == "withdrawn"


async def test_a_refused_message_is_failed_after_its_tries_and_visible_to_hr(world: World, mailbox: Mailbox) -> None:
    mailbox.refused.add(FR_MENTEE)
    start = (datetime.now().astimezone() + timedelta(days=40)).replace(minute=0, second=0, microsecond=0)
    body = {"starts_at": start.isoformat(), "duration_minutes": 30, "format": "remote", "planned_topics": []}
    await world.ok("sessions", "POST", f"/v1/pairs/{world.fr.pair_id}/sessions", body)
    (failed,) = await wait_for(lambda: messages(world, "status = 'failed'"), timeout=90)
    assert (str(failed["recipient_id"]), failed["kind"], failed["attempts"]) == (
        world.fr.mentee_id, "session_scheduled", 3)
    assert "550" in failed["last_error"] and failed["body"] is None
    log = await world.ok("notifications", "GET", "/v1/messages?status=failed", headers=world.committee("FR"))
    assert [(m["message_id"], m["attempts"]) for m in log["items"]] == [(str(failed["message_id"]), 3)]
    assert "550" in log["items"][0]["last_error"]
    hidden = await world.ok("notifications", "GET", "/v1/messages?status=failed", headers=world.committee("DE"))
    assert hidden["items"] == []
    summary = await world.ok("notifications", "GET", "/v1/messages/summary?country=FR")
    assert summary["failed"] == 1 and summary["delivered_to"] == mailbox.url
    event = await world.platform.pool.fetchval(
        "SELECT count(*) FROM notifications.events WHERE type = 'binome.notifications.DeliveryFailed.v1'"
        " AND stream_id = $1", str(failed["message_id"]))
    assert event == 1
    assert len(mailbox.matching(to=FR_MENTEE, kind="session_scheduled")) == 2  # nothing more arrived
    # The mentor's copy went through.
    await wait_for(lambda: _async(len(mailbox.matching(to=FR_MENTOR, kind="session_scheduled")) == 3), timeout=60)


async def two(rows: Awaitable[list[asyncpg.Record]]) -> list[asyncpg.Record] | None:
    """The rows once there are two (one per member of the pair)."""
    found = await rows
    return found if len(found) == 2 else None


async def _async(value: object) -> object:
    return value


async def test_the_delivery_log_pages_newest_first_by_its_public_key(world: World) -> None:
    """The delivery log pages like every list: a cursor holds the last item's
    public key (``queued_at``, then ``message_id``), never a row number, and
    a walk one item a page gives the whole list once, newest first."""
    await wait_for(lambda: messages(world, "kind = 'session_scheduled' AND status = 'delivered'"))
    whole = (await world.ok("notifications", "GET", "/v1/messages?limit=200"))["items"]
    assert len(whole) >= 3
    keys = [(m["queued_at"], m["message_id"]) for m in whole]
    assert keys == sorted(keys, reverse=True)
    walked, cursor = [], None
    while True:
        page = await world.ok("notifications", "GET", "/v1/messages?limit=1" + (f"&cursor={cursor}" if cursor else ""))
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        [last] = page["items"]
        held = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["a"]
        assert held == [datetime.fromisoformat(last["queued_at"]).isoformat(), last["message_id"]]
    assert [m["message_id"] for m in walked] == [m["message_id"] for m in whole]
