"""``binome up --workers 2``: the HTTP side in two processes on one port, the
background once (issue 15, "both cores").

The platform is run as users run it and observed from outside: in dev mode
each response names the worker that answered (``binome-worker: <pid>``), and
/metrics has one ``binome_http_worker_requests`` series per live worker.
Every promise that spans workers is checked with requests that two distinct
workers answered: one rate budget per client, one run of an idempotent
write, one "now", one /readyz verdict; the relays, consumers and schedulers
run once; a worker killed with ``kill -9`` is replaced; Ctrl-C exits 0.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import psutil
import pytest

from tests.support.enrollment import programme_body
from tests.support.platform_process import PlatformProcess, auth, eventually
from tests.system.test_embedded_supervision import _kill_broker_and_hold_its_port

RATE = 40  # per client and hour: each test uses its own organisation
AUTH_FAILURES = 20  # per source address and hour


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    env = {
        "BINOME_WORKERS": "2",
        "BINOME_RATE_LIMIT": f"{RATE}/hour",
        "BINOME_AUTH_FAILURE_LIMIT": f"{AUTH_FAILURES}/hour",
        "BINOME_SCHEDULER_INTERVAL_S": "0.5",
        # Bursts of 50 at once here: none shed (503) by a worker's bound of requests in flight.
        "BINOME_MAX_CONCURRENT_REQUESTS": "100",
    }
    with PlatformProcess.start(tmp_path_factory.mktemp("workers"), env=env) as running:
        yield running


def worker_of(response: httpx.Response) -> int:
    return int(response.headers["binome-worker"])


def worker_pids(platform: PlatformProcess) -> set[int]:
    """The worker processes running now (from the process table, not from the platform)."""
    found = set()
    for proc in platform.children():
        try:
            if "libs.runtime.worker" in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.add(proc.pid)
        except psutil.Error:
            pass
    return found


def at_once(platform: PlatformProcess, count: int, request: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """``count`` requests at the same time, each on a connection of its own
    (the kernel gives each new connection to one worker)."""

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=platform.base_url, timeout=30) as client:
            return request(client)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def until_both_workers(platform: PlatformProcess, attempt: Callable[[], list[httpx.Response]]) -> list[httpx.Response]:
    """``attempt()`` again until two distinct workers answered its requests.

    Bounded by time, not by a count of attempts: a worker that was just
    restarted is in the process table seconds before it accepts (it imports
    every service first), longer on a loaded machine."""

    def both() -> list[httpx.Response] | None:
        responses = attempt()
        return responses if len({worker_of(r) for r in responses}) == 2 else None

    return eventually(both, timeout=90, what="requests answered by both workers")


def worker_series(platform: PlatformProcess) -> dict[int, float]:
    """``binome_http_worker_requests`` by pid, as /metrics shows it."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{platform.base_url}/metrics", timeout=5).text
    return {
        int(sample.labels["pid"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "binome_http_worker_requests"
    }


def test_two_workers_serve_and_metrics_count_the_requests_of_both(platform: PlatformProcess) -> None:
    workers = worker_pids(platform)
    assert len(workers) == 2 and platform.pid not in workers
    route = {"route": "/healthz", "service": "platform"}
    before = platform.metric("binome_http_requests_total", **route) or 0

    responses = at_once(platform, 200, lambda client: client.get("/healthz"))

    assert all(r.status_code == 200 for r in responses)
    answered = Counter(worker_of(r) for r in responses)
    assert set(answered) == workers  # both served some, and nobody else did
    assert platform.metric("binome_http_requests_total", **route) - before == 200  # summed over both processes
    series = worker_series(platform)
    assert set(series) == workers  # one series per live worker, none for the parent
    assert all(series[pid] >= answered[pid] for pid in workers)


def test_a_client_has_one_rate_budget_whatever_worker_answers(platform: PlatformProcess) -> None:
    token = platform.token("hr-rate", "org-workers-rate", ["hr_admin"])
    responses = at_once(platform, RATE + 10, lambda c: c.get("/enrollment/v1/programmes", headers=auth(token)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: RATE, 429: 10}  # exactly the budget, not one per worker
    assert len({worker_of(r) for r in responses if r.status_code == 200}) == 2
    assert all(int(r.headers["Retry-After"]) >= 1 for r in responses if r.status_code == 429)

    bad = at_once(platform, AUTH_FAILURES + 5, lambda c: c.get("/enrollment/v1/programmes", headers=auth("not-a-token")))
    assert Counter(r.status_code for r in bad) == {401: AUTH_FAILURES, 429: 5}
    assert len({worker_of(r) for r in bad}) == 2


def test_a_command_with_its_idempotency_key_counts_once_against_the_budget(platform: PlatformProcess) -> None:
    """A command asks for its caller twice (its role check and its
    idempotency key): the request is still counted once, in whichever worker."""
    hr = auth(platform.token("hr-rate-commands", "org-workers-rate-commands", ["hr_admin"]))

    def create(client: httpx.Client) -> httpx.Response:
        body = programme_body(name=f"Counted {uuid.uuid4().hex[:6]}")
        return client.post("/enrollment/v1/programmes", json=body, headers={**hr, "Idempotency-Key": str(uuid.uuid4())})

    responses = at_once(platform, RATE + 10, create)

    assert Counter(r.status_code for r in responses) == {201: RATE, 429: 10}, [r.text for r in responses[:3]]
    assert len({worker_of(r) for r in responses if r.status_code == 201}) == 2


def test_an_idempotency_key_sent_to_both_workers_at_once_runs_the_write_once(platform: PlatformProcess) -> None:
    hr = auth(platform.token("hr-idem", "org-workers-idem", ["hr_admin"]))

    def same_key_six_times() -> list[httpx.Response]:
        headers = {**hr, "Idempotency-Key": str(uuid.uuid4())}
        body = programme_body(name=f"Once {uuid.uuid4().hex[:6]}")
        return at_once(platform, 6, lambda c: c.post("/enrollment/v1/programmes", json=body, headers=headers))

    responses = until_both_workers(platform, same_key_six_times)

    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    created = {r.json()["programme_id"] for r in responses}
    assert len(created) == 1
    assert sum(r.headers.get("Idempotent-Replayed") != "true" for r in responses) == 1  # one ran, five replayed
    events = platform.sql("SELECT type FROM enrollment.events WHERE stream_id = $1", created.pop())
    assert len(events) == 1


def _outbox_empty(platform: PlatformProcess) -> bool:
    return platform.sql("SELECT count(*) AS n FROM enrollment.outbox")[0]["n"] == 0


def test_each_event_is_published_once_and_applied_once(platform: PlatformProcess) -> None:
    hr = auth(platform.token("hr-events", "org-workers-events", ["hr_admin"]))
    eventually(lambda: _outbox_empty(platform), what="earlier events published")
    published = platform.metric("binome_events_published_total", service="enrollment") or 0
    applied = platform.metric("binome_events_applied_total") or 0
    duplicates = platform.metric("binome_events_skipped_total", reason="duplicate") or 0

    responses = at_once(
        platform, 10, lambda c: c.post("/enrollment/v1/programmes", json=programme_body(name="Flow"), headers=hr)
    )
    assert all(r.status_code == 201 for r in responses) and len({worker_of(r) for r in responses}) == 2
    ids = [r.json()["programme_id"] for r in responses]
    for programme_id in ids:  # through the relay, the broker and insights' consumer
        rollout = f"/insights/v1/programmes/{programme_id}/rollout"
        eventually(lambda rollout=rollout: platform.http.get(rollout, headers=hr).status_code == 200, what=rollout)
    eventually(lambda: _outbox_empty(platform), what="these events published")

    assert platform.metric("binome_events_published_total", service="enrollment") - published == 10
    event_ids = [r["event_id"] for r in platform.sql("SELECT event_id FROM enrollment.events WHERE stream_id = ANY($1)", ids)]
    consumers = [s["schema"] for s in platform.sql(
        "SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'applied_events'")]
    rows = sum(
        platform.sql(f"SELECT count(*) AS n FROM {schema}.applied_events WHERE event_id = ANY($1)", event_ids)[0]["n"]
        for schema in consumers
    )
    assert rows >= 10  # insights at least
    assert platform.metric("binome_events_applied_total") - applied >= rows
    # No record was delivered twice (as two relays publishing, or a consumer
    # re-reading what another instance applied, would do).
    assert (platform.metric("binome_events_skipped_total", reason="duplicate") or 0) == duplicates
    # The relays run in binome up itself: their named connections carry its pid only.
    relays = platform.sql("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'binome relay %'")
    assert relays and all(r["application_name"].endswith(f"pid {platform.pid}") for r in relays)


def test_the_dev_clock_moved_through_one_worker_is_now_for_the_other_and_the_scheduler(platform: PlatformProcess) -> None:
    org = "org-workers-clock"
    hr = auth(platform.token("hr-clock", org, ["hr_admin"]))
    mover = auth(platform.token("clock-workers", org, ["dev_clock"]))
    now = datetime.fromisoformat(platform.http.get("/v1/dev/clock", headers=mover).json()["now"])
    closes_on = now.date() + timedelta(days=3)
    programme = platform.post("/enrollment/v1/programmes", programme_body(), hr)
    wave = platform.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", {
        "name": "FR wave", "region": "Europe", "country": "FR", "committee": "committee-fr",
        "starts_on": (now.date() + timedelta(days=1)).isoformat(), "ends_on": (now.date() + timedelta(days=20)).isoformat(),
        "enrolment_closes_on": closes_on.isoformat(), "target_pairs": 1,
    }, hr)  # fmt: skip

    advanced = platform.post("/v1/dev/clock:advance", {"to": f"{closes_on.isoformat()}T00:00:01+00:00"}, mover)

    reads = until_both_workers(platform, lambda: at_once(platform, 6, lambda c: c.get("/v1/dev/clock", headers=mover)))
    assert {r.json()["offset_seconds"] >= advanced["offset_seconds"] for r in reads} == {True}
    # The wave calendar runs in the background process, on the same clock, once.
    wave_doc = f"/enrollment/v1/waves/{wave['wave_id']}"
    eventually(lambda: platform.http.get(wave_doc, headers=hr).json()["status"] == "enrolment_closed", what="closed")
    types = [r["type"] for r in platform.sql("SELECT type FROM enrollment.events WHERE stream_id = $1", wave["wave_id"])]
    assert Counter(types)["binome.enrollment.WaveEnrolmentClosed.v1"] == 1


def test_a_dead_broker_fails_readyz_in_every_worker(platform: PlatformProcess) -> None:
    broker, holder = _kill_broker_and_hold_its_port(platform)
    try:

        def failing_everywhere() -> bool:
            responses = at_once(platform, 8, lambda c: c.get("/readyz"))
            failed = {worker_of(r) for r in responses if r.status_code == 503 and "broker" in r.json().get("failed", [])}
            return all(r.status_code == 503 for r in responses) and len(failed) == 2

        eventually(failing_everywhere, timeout=30, what="/readyz 503 naming the broker from both workers")
    finally:
        holder.close()
    eventually(lambda: platform.http.get("/readyz").status_code == 200, what="/readyz 200 again")


def test_a_killed_worker_is_replaced_and_the_platform_keeps_answering(platform: PlatformProcess) -> None:
    before = worker_pids(platform)
    restarts = platform.metric("binome_embedded_restarts_total", component="http worker") or 0
    victim = min(before)
    psutil.Process(victim).send_signal(signal.SIGKILL)

    responses = [platform.http.get("/healthz") for _ in range(20)]  # new connections: the survivor takes them
    assert all(r.status_code == 200 for r in responses)
    replaced = eventually(lambda: len(now := worker_pids(platform)) == 2 and victim not in now and now, what="a new worker")
    assert platform.metric("binome_embedded_restarts_total", component="http worker") == restarts + 1
    eventually(lambda: set(worker_series(platform)) <= replaced and victim not in worker_series(platform), what="dead pid gone")
    until_both_workers(platform, lambda: at_once(platform, 20, lambda c: c.get("/healthz")))  # the new one serves


def test_ctrl_c_stops_every_process_and_exits_0(platform: PlatformProcess) -> None:
    workers = worker_pids(platform)
    run_dir = platform.data_dir / "run" / str(platform.pid)
    assert run_dir.is_dir()

    assert platform.stop() == 0

    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in workers)
    assert not run_dir.exists()
