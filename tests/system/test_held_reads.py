"""Reads held by the HTTP workers of ``binome up --workers 2``
(libs/api/held_reads.py), on the platform as users run it.

A page of participants is answered again from a worker's memory (not even a
locked table stops it), yet never older than a write whose answer came
before the read, whatever worker answered either; a change made outside the
platform reaches every worker without waiting out the pages' lifetime (60 s
here); a worker whose listening connection is killed holds nothing from
before, and listens again. A pair read by id is held too, shown only to
whom may see it, and follows its own commands on both workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.enrollment import mentee, mentor, programme_body, wave_body
from tests.support.matching import QUALIFIED
from tests.support.platform_process import PlatformProcess, auth, eventually
from tests.system.test_workers import at_once, worker_of

READS = 20  # at once, each on a connection of its own: both workers answer some
LISTENERS = "binome held reads%"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    env = {"BINOME_WORKERS": "2", "BINOME_HELD_READS_S": "60", "BINOME_MAX_CONCURRENT_REQUESTS": "100"}
    with PlatformProcess.start(tmp_path_factory.mktemp("held-reads"), env=env) as running:
        yield running


class Wave:
    """A wave of its own organisation, and its participants list."""

    def __init__(self, platform: PlatformProcess, name: str) -> None:
        self.platform = platform
        self.hr = auth(platform.token(f"hr-{name}", f"org-held-{name}", ["hr_admin"]))
        programme = platform.post("/enrollment/v1/programmes", programme_body(name=name), self.hr)
        wave = platform.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", wave_body("FR"), self.hr)
        self.id = wave["wave_id"]

    def enrol(self, ref: str) -> dict[str, Any]:
        return self.platform.post(f"/enrollment/v1/waves/{self.id}/participants", mentee(ref), self.hr)

    def pages(self) -> list[httpx.Response]:
        """The list read ``READS`` times at once; every answer a 200."""
        path = f"/enrollment/v1/participants?wave_id={self.id}"
        responses = at_once(self.platform, READS, lambda client: client.get(path, headers=self.hr))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        return responses

    def held_by_both_workers(self) -> None:
        """Read until both workers answered a page from memory."""
        def both() -> bool:
            before = self.platform.metric("binome_held_reads_total", outcome="held") or 0
            answered = {worker_of(r) for r in self.pages()}
            held = (self.platform.metric("binome_held_reads_total", outcome="held") or 0) - before
            return len(answered) == 2 and held >= READS - 2  # each worker's first read may go to the database

        eventually(both, timeout=60, what="the page held by both workers")


def entities(response: httpx.Response) -> dict[str, str]:
    return {p["employee_ref"]: p["profile"]["entity"] for p in response.json()["items"]}


@contextlib.contextmanager
def table_locked(platform: PlatformProcess, table: str, mode: str) -> Iterator[None]:
    """``LOCK TABLE table IN mode MODE`` held from outside the platform meanwhile."""
    locked, release = threading.Event(), threading.Event()

    async def hold_lock() -> None:
        conn = await asyncpg.connect(platform.database_url)
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {table} IN {mode} MODE")
                locked.set()
                while not release.is_set():
                    await conn.execute("SELECT pg_sleep(0.05)")
        finally:
            await conn.close()

    holder = threading.Thread(target=lambda: asyncio.run(hold_lock()))
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join(10)


def test_a_held_page_needs_no_statement(platform: PlatformProcess) -> None:
    wave = Wave(platform, "locked")
    wave.enrol("E-LOCKED-1")
    wave.held_by_both_workers()

    with table_locked(platform, "enrollment.participants", "ACCESS EXCLUSIVE"):
        # The table locked all along (a statement would wait for it): both workers answer.
        def both_answer() -> bool:
            responses = wave.pages()
            assert all(list(entities(r)) == ["E-LOCKED-1"] for r in responses)
            return len({worker_of(r) for r in responses}) == 2

        eventually(both_answer, timeout=20, what="both workers answering")


def test_a_read_after_a_write_sees_it_whichever_worker_answers_either(platform: PlatformProcess) -> None:
    wave = Wave(platform, "writes")
    wave.enrol("E-WRITE-0")
    wave.held_by_both_workers()

    for n in range(1, 6):
        wave.enrol(f"E-WRITE-{n}")  # answered by one worker
        responses = wave.pages()  # then read on both, at once
        assert all(len(r.json()["items"]) == n + 1 for r in responses), (
            n, sorted({len(r.json()["items"]) for r in responses})
        )

    participant = wave.pages()[0].json()["items"][0]
    changed = platform.http.patch(
        f"/enrollment/v1/participants/{participant['participant_id']}",
        json={"entity": "Renamed"},
        headers={**wave.hr, "If-Match": f'"{participant["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    assert all(entities(r)[participant["employee_ref"]] == "Renamed" for r in wave.pages())


def test_a_change_made_outside_the_platform_reaches_every_worker(platform: PlatformProcess) -> None:
    wave = Wave(platform, "outside")
    wave.enrol("E-OUTSIDE-1")
    wave.held_by_both_workers()

    platform.sql(
        "UPDATE enrollment.participants SET doc = jsonb_set(doc, '{profile,entity}', '\"From a console\"')"
        " WHERE wave_id = $1",
        uuid.UUID(wave.id),
    )

    # Well before the pages' 60 s: the change was heard.
    eventually(
        lambda: all(entities(r)["E-OUTSIDE-1"] == "From a console" for r in wave.pages()),
        timeout=5, interval=0.1, what="the console's change on every worker",
    )


def test_a_worker_that_lost_its_listening_connection_holds_nothing_from_before(platform: PlatformProcess) -> None:
    wave = Wave(platform, "listener")
    wave.enrol("E-LISTENER-1")
    wave.held_by_both_workers()
    listeners = {r["pid"] for r in platform.sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1", LISTENERS)}
    assert len(listeners) == 2  # one per worker

    # The listeners killed, then a change while they are gone: its
    # notification reaches neither.
    platform.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1", LISTENERS)
    platform.sql(
        "UPDATE enrollment.participants SET doc = jsonb_set(doc, '{profile,entity}', '\"While deaf\"')"
        " WHERE wave_id = $1",
        uuid.UUID(wave.id),
    )

    # Both listen again, on new connections; what they held from before is not answered.
    eventually(
        lambda: len({r["pid"] for r in platform.sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1", LISTENERS)} - listeners) == 2,
        timeout=30, what="both workers listening again",
    )
    eventually(
        lambda: all(entities(r)["E-LISTENER-1"] == "While deaf" for r in wave.pages()),
        timeout=5, interval=0.1, what="the change on every worker",
    )
    wave.held_by_both_workers()
    assert all(entities(r)["E-LISTENER-1"] == "While deaf" for r in wave.pages())


def test_a_held_pair_follows_its_changes_and_is_shown_only_to_whom_may_see_it(platform: PlatformProcess) -> None:
    wave = Wave(platform, "pair")
    mentee_id = wave.enrol("E-PAIR-MENTEE")["participant_id"]
    mentor_id = platform.post(f"/enrollment/v1/waves/{wave.id}/participants", mentor("R-PAIR-MENTOR"), wave.hr)[
        "participant_id"
    ]
    platform.post(f"/enrollment/v1/participants/{mentor_id}/qualification", QUALIFIED, wave.hr)

    def proposed() -> str | None:  # once matching's consumer has both candidates
        with platform.http as http:
            run = http.post("/matching/v1/runs", json={"wave_ids": [wave.id]}, headers=wave.hr)
        assert run.status_code == 201, run.text
        return run.json()["pairs"][0]["pair_id"] if run.json()["pairs"] else None

    path = f"/matching/v1/pairs/{eventually(proposed, timeout=30, what='a proposed pair')}"

    def reads(headers: dict[str, str]) -> list[httpx.Response]:
        return at_once(platform, READS, lambda client: client.get(path, headers=headers))

    def held_by_both() -> bool:
        before = platform.metric("binome_held_reads_total", outcome="held") or 0
        answered = {worker_of(r) for r in reads(wave.hr)}
        return len(answered) == 2 and (platform.metric("binome_held_reads_total", outcome="held") or 0) - before >= READS - 2

    eventually(held_by_both, timeout=60, what="the pair held by both workers")
    stranger = auth(platform.token(str(uuid.uuid4()), "org-held-pair", ["participant"]))
    assert {r.status_code for r in reads(stranger)} == {404}  # held, and still not theirs to see
    assert {r.status_code for r in reads(auth(platform.token(mentee_id, "org-held-pair", ["participant"])))} == {200}

    accepted = platform.post(f"{path}:accept", {}, auth(platform.token(mentee_id, "org-held-pair", ["participant"])))
    after = reads(wave.hr)  # at once, on both workers, right after the answer
    assert all(r.json()["version"] == accepted["version"] for r in after), sorted({r.json()["version"] for r in after})
    assert all(r.json() == accepted for r in after)  # the pair as its command answered it


def test_a_held_dashboard_follows_the_consumers_that_feed_it(platform: PlatformProcess) -> None:
    """The rollout dashboard is computed from insights' read tables, which
    its consumer writes in the background process: each change is heard by
    both workers (pages held 60 s here)."""
    wave = Wave(platform, "rollout")
    programme_id = platform.sql("SELECT programme_id FROM enrollment.waves WHERE wave_id = $1", uuid.UUID(wave.id))[0][
        "programme_id"
    ]
    path = f"/insights/v1/programmes/{programme_id}/rollout"

    def enrolled(expected: int) -> bool:
        responses = at_once(platform, READS, lambda client: client.get(path, headers=wave.hr))
        return all(r.status_code == 200 and r.json()["programme"][0]["enrolled"] == expected for r in responses)

    wave.enrol("E-ROLLOUT-1")
    eventually(lambda: enrolled(1), timeout=30, interval=0.1, what="the first enrolment on the dashboard")
    before = platform.metric("binome_held_reads_total", outcome="held") or 0
    eventually(lambda: enrolled(1) and (platform.metric("binome_held_reads_total", outcome="held") or 0) > before,
               timeout=30, what="the dashboard held")

    # The consumer held back (insights' table locked against writes, not reads)
    # while the enrolment is answered, which moves the host's moment: both
    # workers read the dashboard again and hold it, still without it.
    with table_locked(platform, "insights.participants", "EXCLUSIVE"):
        wave.enrol("E-ROLLOUT-2")
        before = platform.metric("binome_held_reads_total", outcome="held") or 0
        eventually(lambda: enrolled(1) and (platform.metric("binome_held_reads_total", outcome="held") or 0) > before,
                   timeout=30, what="the dashboard held without the second enrolment")
    # The consumer's write, once it goes through, is heard by both.
    eventually(lambda: enrolled(2), timeout=10, interval=0.1, what="the second enrolment on every worker's dashboard")
