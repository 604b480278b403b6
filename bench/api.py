#!/usr/bin/env python
"""What a request costs the platform, and its latency against offered load.

Run from the repository root::

    .venv/bin/python bench/api.py                 # the rate sweep (about 6 min here)
    .venv/bin/python bench/api.py --quick         # shorter steps, fewer rates (about 3 min)
    .venv/bin/python bench/api.py --workers 2     # `binome up --workers 2`
    .venv/bin/python bench/api.py --mode shedding # goodput with load shedding on and off
    .venv/bin/python bench/api.py --statements    # and PostgreSQL statements per request

``binome up`` runs as a subprocess in a temporary data directory (embedded
PostgreSQL and broker, every relay, consumer and scheduler running, as users
run it; the per-client rate limit is lifted: one bench client is not what is
measured). ``binome demo`` seeds it through the HTTP APIs (an organisation's
programme, its waves, a few hundred participants, pairs, weeks of sessions
and surveys). Then, per endpoint class:

* ``participants``: ``GET /enrollment/v1/participants?programme_id=…&limit=50``;
* ``pair``: ``GET /matching/v1/pairs/{pair_id}``;
* ``rollout``: ``GET /insights/v1/programmes/{programme_id}/rollout`` (the dashboard);
* ``enrol`` (a write): ``POST /enrollment/v1/waves/{wave_id}/participants``, a new
  person each time, with an ``Idempotency-Key`` (as clients send it); its event
  goes through the outbox relay to every consumer while the load runs;
* ``enrol-service``: the same write on the enrollment service alone
  (``binome up --service enrollment``, as docker-compose deploys each
  service, with embedded PostgreSQL and broker of its own, a programme and an
  open wave created through its API): the request with its event, which its
  relay publishes. The write aim is read here: the six projections the event
  feeds (matching's candidates, evaluation's intake, sessions' directory,
  insights, notifications' recipients and webhooks) run in the services that
  read it, whose CPU ``enrol`` adds (``enrol`` minus ``enrol-service``).

**CPU per request** is read from /proc (utime + stime): the platform's Python
processes (``binome up`` and its Python children) and PostgreSQL's (every
``postgres`` process, plus what the postmaster reaped), the broker apart. A
step at ``--cpu-rate`` requests/s (the write: half), once the platform is at
rest (its consumers caught up with the seeding), minus an idle window measured
just before (relays, consumers and schedulers polling): *net* per request;
*gross* keeps the idle share. The write's step lasts until the platform is at
rest again, so the relay and the consumers' work on its events counts for it. CPU time is what the platform's processes ran, so it holds up
when the machine is shared, unlike latency.

**Statements per request** (``--statements``): the platform's embedded
PostgreSQL starts with pg_stat_statements loaded, and each CPU step counts
the statements the server was sent, net of the idle window's rate, with the
most frequent listed. Each is a round trip from a platform process; unlike
CPU time, the count does not move with the machine's load.

**Latency under load**: an open-loop generator starts requests at a fixed
rate whatever the answers (a raw asyncio HTTP/1.1 client over keep-alive
connections, cheap on the shared cores), and a request's latency runs from
its *scheduled* start, so a generator or a server that falls behind shows up
in the figure. A client gives up after ``--patience`` seconds (counted, never
dropped). Rates sweep ``--read-rates`` for the reads and ``--write-rates``
for the write.

**The floor**: beside it, in the same run, a bare FastAPI app (uvicorn, the
same server settings) with one route behind the same auth dependency
(``libs.api.security.current_principal``, the same verifier and dev key),
answering a fixed JSON: what any request costs before Binome does anything.

The figures are printed, written to ``bench/out/api.json`` and drawn (p50 and
p99 against offered rate, one panel per endpoint class) in
``bench/out/api.svg`` and ``.png``. ``--mode shedding`` is the load-shedding
comparison (``bench/out/api_shedding.*``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/api.py` from anywhere

import httpx  # noqa: E402

from libs.embedded.broker import free_port  # noqa: E402
from libs.runtime.workers import WORKER_MODULE  # noqa: E402
from libs.settings import AUDIT_LINGER_S  # noqa: E402
from tests.support.platform_process import PlatformProcess, auth, eventually  # noqa: E402
from tests.support.statements import StatementCounts, preload_statement_counts  # noqa: E402

OUT = ROOT / "bench" / "out"
NO_SHEDDING = 100_000
#: One bench client: the per-client limit is lifted, it is not what is measured.
UNLIMITED = {"BINOME_RATE_LIMIT": "100000000/minute"}
READS = ("participants", "pair", "rollout")
WRITE = "enrol"
#: The write on the enrollment service alone: the request with its event.
SERVICE_WRITE = "enrol-service"
FLOOR = "floor"
CLASSES = (*READS, WRITE, SERVICE_WRITE)
#: ``binome up``'s arguments for the enrollment service alone.
ENROLLMENT_ALONE = ("--service", "enrollment")
#: The aims of issue 15: Python CPU per request, and p99 at a rate.
AIM_CPU_MS = {"read": 1.0, "write": 4.0}
AIM_P99 = {"read": (200, 50.0), "write": (100, 100.0)}
AIM_VERDICTS = {True: "met", False: "NOT met", None: "reported"}


# --------------------------------------------------------------------------- the load generator


class Connections:
    """Keep-alive connections to one server, as HTTP clients and gateways keep them.

    A request takes an idle connection or opens one; a client that gives up
    closes its connection (the server sees the disconnect and cancels). A
    connection idle for ``IDLE_S`` is not reused: uvicorn closes one after 5 s
    (``timeout_keep_alive``), and a request written to a connection the server
    has just closed failed as status 0 (about one in 1,000-3,000 enrolments).
    """

    IDLE_S = 4.0

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.perf_counter() - since < self.IDLE_S:
                return reader, writer
            writer.close()
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, raw: bytes, patience: float, scheduled: float | None = None) -> tuple[int, float]:
        """(status, seconds from ``scheduled``, or from now); status 0 when the
        client gave up or the connection failed."""
        start = time.perf_counter() if scheduled is None else scheduled
        connection = None
        try:
            async with asyncio.timeout(max(0.001, start + patience - time.perf_counter())):
                connection = await self._connection()
                reader, writer = connection
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(
                    int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
            self.idle.append((*connection, time.perf_counter()))
            return status, time.perf_counter() - start
        except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError, ValueError, StopIteration):
            if connection is not None:
                connection[1].close()
            return 0, time.perf_counter() - start

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


def raw_request(method: str, path: str, token: str, body: bytes | None = None, **headers: str) -> bytes:
    """One HTTP/1.1 request, encoded once before the clock starts."""
    lines = [f"{method} {path} HTTP/1.1", "Host: bench", *(f"{k}: {v}" for k, v in auth(token).items())]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def open_loop(
    port: int, requests: Callable[[int], bytes], rate: float, seconds: float, patience: float
) -> list[tuple[int, float]]:
    """Start ``rate`` requests a second for ``seconds``, whatever the answers;
    the i-th request is ``requests(i)`` and is timed from its scheduled start."""
    tasks = []
    connections = Connections(port)
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(connections.request(requests(i), patience, scheduled)))
    results = await asyncio.gather(*tasks)
    connections.close()
    return results


# --------------------------------------------------------------------------- CPU from /proc


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds (user + system) the server's processes have run, by kind."""

    python: float
    postgres: float
    other: float  # the broker
    #: The part of ``python`` the HTTP workers ran (``binome up --workers N``):
    #: the requests themselves; the rest is the platform process's relays,
    #: consumers and schedulers (a write's event reaching the broker and
    #: every projection downstream). 0 without workers: one process does all.
    workers: float = 0.0

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(self.python - other.python, self.postgres - other.postgres, self.other - other.other,
                         self.workers - other.workers)


def cpu_of(pid: int) -> CpuSample:
    """``pid`` and its descendants: Python ones (the server, its workers),
    PostgreSQL's (live processes and the children the postmaster reaped),
    anything else (the broker)."""
    totals = {"python": 0.0, "postgres": 0.0, "other": 0.0, "workers": 0.0}
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            name, times, cmdline = process.name(), process.cpu_times(), process.cmdline()
            if process.pid != pid and "postgres" in " ".join(cmdline[:1]) + name:
                kind = "postgres"
                reaped = times.children_user + times.children_system  # exited backends
            else:
                kind = "python" if process.pid == pid or name.startswith("python") else "other"
                reaped = 0.0
            totals[kind] += times.user + times.system + reaped
            if kind == "python" and WORKER_MODULE in cmdline:
                totals["workers"] += times.user + times.system
    return CpuSample(**totals)


@dataclass
class CpuPerRequest:
    endpoint: str
    rate: float
    requests: int
    ok: int
    python_ms_gross: float
    python_ms_net: float
    postgres_ms_gross: float
    postgres_ms_net: float
    idle_python_cores: float
    idle_postgres_cores: float
    #: Of ``python_ms_net``, what the HTTP workers ran (the request itself;
    #: the rest is the platform process's relays and consumers). None
    #: without workers.
    workers_ms_net: float | None = None
    #: ``--statements``: PostgreSQL statements per answered request, net of
    #: idle (BEGIN, COMMIT and savepoints included: each is a round trip), and
    #: the most frequent ones.
    statements_per_request: float | None = None
    top_statements: list[tuple[str, float]] | None = None


#: Baseline mode's in-flight bound per service (the default, 16, shed some of
#: the demo's requests on a loaded machine: it counts a request until its
#: audit record is committed).
SEED_LIMIT = 64
#: A CPU step's clients wait this long: every request is answered, none is
#: cancelled half done (its CPU would count for nothing).
CPU_PATIENCE = 60.0
#: Python cores below which the platform counts as at rest (idle, it polls: about 0.1 here).
AT_REST_CORES = 0.25


# --------------------------------------------------------------------------- statements per request (--statements)


def per_request(idle: dict[str, int], idle_s: float, step: dict[str, int], elapsed: float, count: int
                ) -> tuple[float, list[tuple[str, float]]]:
    """Statements per request, net of the idle rate (schedulers and gauges
    poll), and the 40 most frequent of those run at least once every 20
    requests."""
    net = {q: (calls - idle.get(q, 0) / idle_s * elapsed) / count for q, calls in step.items()}
    total = (sum(step.values()) - sum(idle.values()) / idle_s * elapsed) / count
    top = sorted(((q[:160], round(n, 2)) for q, n in net.items() if n >= 0.05), key=lambda t: -t[1])
    return round(total, 2), top[:40]


def settle(pid: int, window: float = 2.0, timeout: float = 180.0) -> float:
    """Wait until the server's Python runs under ``AT_REST_CORES`` for two
    windows in a row (consumers caught up, relays drained): seconds waited."""
    started, calm = time.perf_counter(), 0
    while calm < 2 and time.perf_counter() - started < timeout:
        before = cpu_of(pid)
        time.sleep(window)
        calm = calm + 1 if (cpu_of(pid) - before).python / window < AT_REST_CORES else 0
    return time.perf_counter() - started


def measure_cpu(
    endpoint: str, pid: int, port: int, requests: Callable[[int], bytes], rate: float, seconds: float, idle_s: float,
    patience: float, *, drain: bool = False, statements: StatementCounts | None = None,
) -> CpuPerRequest:
    """Idle window, then a steady step: CPU per answered request, gross and net
    of idle. ``drain``: the step lasts until the server is at rest again, so
    the consumers' work on a write's event counts for the write.
    ``statements``: the PostgreSQL statements of both windows are counted too."""
    settle(pid)
    if statements is not None:
        statements.reset()
    before_idle = cpu_of(pid)
    time.sleep(idle_s)
    idle = cpu_of(pid) - before_idle
    if statements is not None:
        idle_statements = statements.read()
        statements.reset()
    before = cpu_of(pid)
    started = time.perf_counter()
    results = asyncio.run(open_loop(port, requests, rate, seconds, patience))
    # The step's last audit records are shipped after its last answer (the
    # spool's linger, libs/audit/spool.py): their statement and CPU are the
    # step's, not the next step's idle window's.
    time.sleep(AUDIT_LINGER_S + 0.1)
    if drain:
        settle(pid, window=1.0)
    elapsed = time.perf_counter() - started
    used = cpu_of(pid) - before
    ok = sum(1 for status, _ in results if 200 <= status < 300)
    count = max(ok, 1)
    idle_python, idle_postgres = idle.python / idle_s, idle.postgres / idle_s
    found = CpuPerRequest(
        endpoint, rate, len(results), ok,
        round(used.python / count * 1000, 3), round((used.python - idle_python * elapsed) / count * 1000, 3),
        round(used.postgres / count * 1000, 3), round((used.postgres - idle_postgres * elapsed) / count * 1000, 3),
        round(idle_python, 3), round(idle_postgres, 3),
    )  # fmt: skip
    if used.workers:
        idle_workers = idle.workers / idle_s
        found.workers_ms_net = round((used.workers - idle_workers * elapsed) / count * 1000, 3)
    if statements is not None:
        found.statements_per_request, found.top_statements = per_request(
            idle_statements, idle_s, statements.read(), elapsed, count)
    return found


# --------------------------------------------------------------------------- the sweep


@dataclass
class Step:
    endpoint: str
    offered_rps: float
    answered_rps: float
    errors: int  # answered, not 2xx
    gave_up: int  # no answer within the patience
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def summarise(endpoint: str, rate: float, seconds: float, results: list[tuple[int, float]]) -> Step:
    ok = sorted(s * 1000 for status, s in results if 200 <= status < 300)
    return Step(
        endpoint,
        round(rate, 1),
        round(len(ok) / seconds, 1),
        sum(1 for status, _ in results if status >= 300),
        sum(1 for status, _ in results if status == 0),
        round(statistics.median(ok), 1) if ok else None,
        round(percentile(ok, 0.99), 1) if ok else None,
        round(ok[-1], 1) if ok else None,
    )


def sweep(
    endpoint: str, port: int, requests: Callable[[int], bytes], rates: list[float], seconds: float, patience: float
) -> list[Step]:
    steps = []
    offset = 0
    for rate in rates:
        def shifted(i: int, base: int = offset) -> bytes:
            return requests(base + i)

        results = asyncio.run(open_loop(port, shifted, rate, seconds, patience))
        offset += len(results)
        step = summarise(endpoint, rate, seconds, results)
        print(f"    {endpoint:>12} {rate:>6.0f}/s: answered {step.answered_rps}/s, p50 {step.p50_ms} ms, "
              f"p99 {step.p99_ms} ms, errors {step.errors}, gave up {step.gave_up}", flush=True)
        steps.append(step)
        if step.gave_up:
            time.sleep(patience)  # let abandoned requests drain before the next step
    return steps


# --------------------------------------------------------------------------- seeding through the demo


@dataclass
class Seeded:
    """What the demo built, and the requests of each endpoint class."""

    programme_id: str
    pair_id: str
    wave_id: str  # an open wave for the writes
    participants_per_page: int
    token: str
    template: dict[str, Any] = field(repr=False)

    def reads(self) -> dict[str, Callable[[int], bytes]]:
        requests = {
            "participants": raw_request("GET", f"/enrollment/v1/participants?programme_id={self.programme_id}&limit=50",
                                        self.token),
            "pair": raw_request("GET", f"/matching/v1/pairs/{self.pair_id}", self.token),
            "rollout": raw_request("GET", f"/insights/v1/programmes/{self.programme_id}/rollout", self.token),
        }
        return {name: (lambda i, raw=raw: raw) for name, raw in requests.items()}

    def writes(self, prefix: str) -> Callable[[int], bytes]:
        """The i-th enrolment: a new person each time (built when asked, a few µs)."""
        import orjson

        def enrolment(i: int) -> bytes:
            ref = f"B-{prefix}-{i:07d}"
            body = {**self.template, "employee_ref": ref, "display_name": f"Bench {ref}",
                    "email": f"{ref.lower()}@example.com"}
            return raw_request("POST", f"/enrollment/v1/waves/{self.wave_id}/participants", self.token,
                               orjson.dumps(body), Idempotency_Key=str(uuid.uuid4()))

        return enrolment


#: The worlds ``binome demo`` seeds: tiny (the integration test), small (a
#: programme of 75: a full page of 50), full (330 people in 5 waves).
WORLDS = {
    "tiny": dict(countries=1, mentors=4, mentees=6, wave_size=30),
    "small": dict(countries=2, mentors=25, mentees=50, wave_size=60),
    "full": dict(countries=4, mentors=110, mentees=220, wave_size=60),
}


#: The demo's story as both seedings build it (the service alone takes the
#: whole platform's first wave and first mentee).
STORY = dict(seed=7, second_wave_week=1)


def seed(platform: PlatformProcess, world: str) -> Seeded:
    from libs.demo import DemoError, Options, run_demo

    options = Options(
        base_url=platform.base_url, data_dir=platform.data_dir, out=platform.data_dir / "demo", weeks=3,
        k_anonymity=3, concurrency=4, **STORY, **WORLDS[world],
    )
    for attempt in range(3):
        try:
            result = asyncio.run(run_demo(options))
            break
        except DemoError as exc:
            # Under a loaded machine a service may shed one of the demo's
            # requests (503, its in-flight bound): play the story again.
            print(f"the demo stopped ({exc}); again", flush=True)
            if attempt == 2:
                raise
    token = bench_hr(platform)
    wave = result.waves[0]
    wave_id = open_bench_wave(platform, token, result.programme_id, wave)
    with platform.http as http:
        page = http.get("/enrollment/v1/participants", params={"programme_id": result.programme_id, "limit": 50},
                        headers=auth(token)).json()
    return Seeded(result.programme_id, result.pairs[0].pair_id, wave_id, len(page["items"]), token,
                  dict(wave.mentees[0].row))


def seed_service(platform: PlatformProcess, world: str) -> Seeded:
    """The enrollment service alone: the demo's first wave's programme and wave
    created through its API (no other service runs to play the demo's story),
    and the demo's first mentee as the template of every enrolment."""
    from libs.demo.world import build_world

    built = build_world(**STORY, **WORLDS[world])
    token = bench_hr(platform)
    programme = platform.post("/enrollment/v1/programmes", {
        "name": "Bench programme", "mode": "reverse", "settings": {"languages": built.languages},
    }, auth(token))  # fmt: skip
    wave = built.waves[0]
    wave_id = open_bench_wave(platform, token, programme["programme_id"], wave)
    return Seeded(programme["programme_id"], "", wave_id, 0, token, dict(wave.mentees[0].row))


def bench_hr(platform: PlatformProcess) -> str:
    """The token of the bench's client: the demo organisation's global HR admin."""
    from libs.demo import Options

    return platform.token("bench-hr", Options.organisation, ["hr_admin"], expires_in=12 * 3600)


def open_bench_wave(platform: PlatformProcess, token: str, programme_id: str, like: Any) -> str:
    """A wave open to enrolments for the writes, in the country of the demo's
    wave ``like``, far enough ahead never to close during a run; its id."""
    opened = platform.post(f"/enrollment/v1/programmes/{programme_id}/waves", {
        "name": "Bench wave", "region": like.region, "country": like.country, "committee": like.committee,
        "starts_on": "2099-01-04", "ends_on": "2099-06-30", "target_pairs": 1000,
    }, auth(token))  # fmt: skip
    return opened["wave_id"]


def check_answers(platform: PlatformProcess, seeded: Seeded, *, reads: bool = True) -> None:
    """Each request answers 2xx before anything is measured (a 4xx is cheap, and wrong)."""
    port = platform.port
    for name, requests in {**(seeded.reads() if reads else {}), WRITE: seeded.writes("check")}.items():
        status, _ = asyncio.run(Connections(port).request(requests(0), 30))
        if not 200 <= status < 300:
            raise RuntimeError(f"{name}: answered {status}")


# --------------------------------------------------------------------------- the floor: a bare FastAPI app


def floor_app(data_dir: str) -> Any:
    """One route behind Binome's auth dependency, answering a fixed JSON."""
    from fastapi import Depends, FastAPI

    from libs.api.problems import install_problem_handlers
    from libs.api.security import current_principal
    from libs.auth.principal import Principal
    from libs.auth.tokens import TokenVerifier
    from libs.settings import Settings

    app = FastAPI()
    install_problem_handlers(app)  # a refused token is problem+json, as on the platform
    app.state.token_verifier = TokenVerifier.from_settings(Settings(data_dir=Path(data_dir)))

    @app.get("/v1/ping")
    async def ping(who: Principal = Depends(current_principal)) -> dict[str, str]:
        return {"subject": who.subject, "organisation": who.organisation}

    return app


@contextlib.contextmanager
def floor_server(data_dir: Path) -> Iterator[tuple[int, int]]:
    """The bare app under uvicorn in a child process: (pid, port)."""
    port = free_port()
    code = (
        "import sys, uvicorn; sys.path.insert(0, sys.argv[1]); from bench.api import floor_app; "
        "uvicorn.run(floor_app(sys.argv[2]), host='127.0.0.1', port=int(sys.argv[3]), log_level='warning', "
        "access_log=False, server_header=False)"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(data_dir), str(port)], cwd=ROOT)
    try:
        eventually(lambda: httpx.get(f"http://127.0.0.1:{port}/v1/ping", timeout=2).status_code == 401,
                   timeout=30, what="the floor app")
        yield process.pid, port
    finally:
        process.terminate()
        process.wait(10)


# --------------------------------------------------------------------------- the run


def platform_env(shedding: bool = True, limit: int | None = None) -> dict[str, str]:
    env = dict(UNLIMITED)
    if not shedding:
        env["BINOME_MAX_CONCURRENT_REQUESTS"] = str(NO_SHEDDING)
    elif limit is not None:
        env["BINOME_MAX_CONCURRENT_REQUESTS"] = str(limit)
    return env


def selected(classes: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The endpoint classes ``--classes`` names, in their usual order."""
    return {name: requests for name, requests in classes.items() if name in args.classes}


def run_sweep(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "mode": "sweep", "classes": args.classes, "workers": args.workers, "step_s": args.step,
        "cpu_step_s": args.cpu_step, "cpu_rate": args.cpu_rate, "patience_s": args.patience, "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    extra = ("--workers", str(args.workers)) if args.workers else ()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="binome-bench-api-")))
        if args.statements:
            preload_statement_counts(tmp / "data")  # PlatformProcess's data directory
        env = platform_env()
        if args.tiny:
            # The lag gauges' burst (three statements per consumer and source,
            # every 5 s) against a half-second idle window made a net count
            # negative now and then: hourly, the idle window stands for the rest.
            env["BINOME_BACKLOG_INTERVAL_S"] = "3600"
        platform = stack.enter_context(PlatformProcess.start(tmp, env=env, args=extra, ready_timeout=180))
        counts = StatementCounts(platform) if args.statements else None
        print("seeding through `binome demo`...", flush=True)
        started = time.perf_counter()
        seeded = seed(platform, args.world)
        report["seed_s"] = round(time.perf_counter() - started, 1)
        report["settle_after_seed_s"] = round(settle(platform.pid), 1)
        report["seeded"] = {"programme_id": seeded.programme_id, "pair_id": seeded.pair_id,
                            "participants_per_page": seeded.participants_per_page}
        check_answers(platform, seeded)
        classes = selected({**seeded.reads(), WRITE: seeded.writes("cpu")}, args)
        print("CPU per request (from /proc):", flush=True)
        cpu = []
        for name, requests in classes.items():
            rate = args.cpu_rate / 2 if name == WRITE else args.cpu_rate
            found = measure_cpu(name, platform.pid, platform.port, requests, rate, args.cpu_step, args.idle,
                                CPU_PATIENCE, drain=name == WRITE, statements=counts)
            print(f"    {found}", flush=True)
            cpu.append(found)
        print("latency against offered rate:", flush=True)
        steps = []
        for name, requests in (selected({**seeded.reads(), WRITE: seeded.writes("sweep")}, args)
                               if args.sweep else {}).items():
            rates = args.write_rates if name == WRITE else args.read_rates
            steps += sweep(name, platform.port, requests, rates, args.step, args.patience)
        report["load_average_after_platform"] = [round(x, 2) for x in os.getloadavg()]
        print("the floor: a bare FastAPI app with the same auth dependency", flush=True)
        with floor_server(platform.data_dir) as (pid, port):
            ping = raw_request("GET", "/v1/ping", seeded.token)
            cpu.append(measure_cpu(FLOOR, pid, port, lambda i: ping, args.cpu_rate, args.cpu_step, args.idle,
                                   CPU_PATIENCE))
            print(f"    {cpu[-1]}", flush=True)
            if args.sweep:
                steps += sweep(FLOOR, port, lambda i: ping, args.read_rates, args.step, args.patience)
        if SERVICE_WRITE in args.classes:
            platform.stop()  # idle beside the service alone, it would only add noise
            cpu.append(measure_service_write(args, tmp / "service", env, extra))
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["cpu"] = [asdict(c) for c in cpu]
    report["steps"] = [asdict(s) for s in steps]
    report["aims"] = aims(cpu, steps)
    return report


def measure_service_write(
    args: argparse.Namespace, directory: Path, env: dict[str, str], extra: tuple[str, ...]
) -> CpuPerRequest:
    """The write on the enrollment service alone, started in ``directory``."""
    print("the write on the enrollment service alone (`binome up --service enrollment`)", flush=True)
    if args.statements:
        preload_statement_counts(directory / "data")
    with PlatformProcess.start(directory, env=env, args=(*extra, *ENROLLMENT_ALONE), ready_timeout=180) as alone:
        seeded = seed_service(alone, args.world)
        check_answers(alone, seeded, reads=False)
        found = measure_cpu(SERVICE_WRITE, alone.pid, alone.port, seeded.writes("cpu"), args.cpu_rate / 2,
                            args.cpu_step, args.idle, CPU_PATIENCE, drain=True,
                            statements=StatementCounts(alone) if args.statements else None)
    print(f"    {found}", flush=True)
    return found


@contextlib.contextmanager
def platform_of(
    checkout: Path, directory: Path, args: argparse.Namespace, services: tuple[str, ...] = ()
) -> Iterator[PlatformProcess]:
    """``binome up`` of ``checkout`` (another work tree of the repository: its
    own code, this bench's client, the same Python environment); ``services``:
    more of its arguments (``ENROLLMENT_ALONE``)."""
    from tests.support import platform_process

    # Both sides alike: a baseline run in one process beside workers would
    # charge it the single process's extra work (a baseline from before
    # ``--workers`` existed refuses it: run without ``--workers`` then).
    extra = (*(("--workers", str(args.workers)) if args.workers else ()), *services)
    path = [str(checkout)]
    if checkout != ROOT and args.baseline_hide:
        # Packages this checkout installs and the baseline does not pin: an
        # import of them fails there, as on the baseline's own install.
        hidden = directory / "hidden"
        hidden.mkdir()
        for module in args.baseline_hide:
            (hidden / f"{module}.py").write_text(f"raise ImportError('{module} is not installed for the baseline')\n")
        path.insert(0, str(hidden))
    # The seeding's bursts must not be shed on a loaded machine (at 50 requests/s nothing is).
    env = {**platform_env(limit=SEED_LIMIT), "PYTHONPATH": os.pathsep.join(path)}
    platform = PlatformProcess.create(directory, env=env, args=extra)
    saved, platform_process.REPOSITORY = platform_process.REPOSITORY, checkout  # its cwd: `python -m libs.cli`
    try:
        platform.launch(ready_timeout=180)
    finally:
        platform_process.REPOSITORY = saved
    try:
        yield platform
    finally:
        platform.stop()


def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    """CPU per request of this checkout beside ``--baseline``'s, both platforms
    up at once and their steps interleaved (baseline, this, baseline, this),
    so that both see the same machine: the ratio holds up where the
    absolute figures drift with what else runs."""
    report: dict[str, Any] = {
        "mode": "baseline", "baseline": str(args.baseline), "world": args.world, "cpu_step_s": args.cpu_step,
        "cpu_rate": args.cpu_rate, "rounds": args.rounds, "hidden_from_baseline": args.baseline_hide,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    sides = {"before": args.baseline.resolve(), "after": ROOT}
    figures: dict[str, dict[str, list[CpuPerRequest]]] = {side: {} for side in sides}
    # The whole platforms first, then (stopped: they would idle beside it) the
    # enrollment service alone, each layout both sides up at once.
    layouts = {(): [name for name in args.classes if name != SERVICE_WRITE],
               ENROLLMENT_ALONE: [name for name in args.classes if name == SERVICE_WRITE]}
    for services, names in layouts.items():
        if names:
            interleave(args, sides, services, names, figures)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["cpu"] = {side: {name: [asdict(c) for c in found] for name, found in by.items()} for side, by in figures.items()}
    report["summary"] = {
        name: {
            **{f"{side}_{kind}_ms": round(statistics.median(getattr(c, f"{kind}_ms_net") for c in figures[side][name]), 3)
               for side in sides for kind in ("python", "postgres")},
        }
        for name in args.classes
    }
    for name, row in report["summary"].items():
        row["python_after_over_before"] = round(row["after_python_ms"] / row["before_python_ms"], 2)
        for side in sides:  # the HTTP workers' part, with --workers
            workers = [c.workers_ms_net for c in figures[side][name] if c.workers_ms_net is not None]
            row[f"{side}_workers_ms"] = round(statistics.median(workers), 3) if workers else None
    return report


def interleave(
    args: argparse.Namespace, sides: dict[str, Path], services: tuple[str, ...], names: list[str],
    figures: dict[str, dict[str, list[CpuPerRequest]]],
) -> None:
    """Both sides' platforms (``services``: alone, or every service) up at
    once, seeded, and each class's steps interleaved into ``figures``."""
    with contextlib.ExitStack() as stack:
        platforms, seeded = {}, {}
        for side, checkout in sides.items():
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"binome-bench-api-{side}-")))
            platforms[side] = stack.enter_context(platform_of(checkout, tmp, args, services))
            if services:
                seeded[side] = seed_service(platforms[side], args.world)
            else:
                print(f"seeding the {side} platform ({checkout}) through `binome demo`...", flush=True)
                seeded[side] = seed(platforms[side], args.world)
            check_answers(platforms[side], seeded[side], reads=not services)
        for name in names:
            write = name in (WRITE, SERVICE_WRITE)
            for round_ in range(args.rounds):
                for side in sides:
                    platform = platforms[side]
                    requests = seeded[side].writes(f"{side}{round_}") if write else seeded[side].reads()[name]
                    rate = args.cpu_rate / 2 if write else args.cpu_rate
                    found = measure_cpu(name, platform.pid, platform.port, requests, rate, args.cpu_step, args.idle,
                                        CPU_PATIENCE, drain=write)
                    print(f"    {side:>6}: {found}", flush=True)
                    figures[side].setdefault(name, []).append(found)


def print_baseline(report: dict[str, Any]) -> None:
    print(f"\nCPU per request, ms net of idle, median of {report['rounds']} interleaved steps "
          f"(load average {report['load_average_at_start']} at start, {report['load_average_at_end']} at end)")
    print(f"{'endpoint':>12} {'Python before':>14} {'Python after':>13} {'after/before':>13} "
          f"{'workers before':>15} {'workers after':>14} {'PG before':>10} {'PG after':>9}")
    for name, row in report["summary"].items():
        print(f"{name:>12} {row['before_python_ms']:>14} {row['after_python_ms']:>13} "
              f"{row['python_after_over_before']:>13} {str(row.get('before_workers_ms') or '-'):>15} "
              f"{str(row.get('after_workers_ms') or '-'):>14} {row['before_postgres_ms']:>10} {row['after_postgres_ms']:>9}")


def aims(cpu: list[CpuPerRequest], steps: list[Step]) -> dict[str, Any]:
    """Each aim of issue 15, met or not, from the measured figures."""
    out: dict[str, Any] = {}
    for c in cpu:
        if c.endpoint == FLOOR:
            continue
        if c.endpoint == WRITE:
            # Not an aim's figure: the write with the six projections its
            # event feeds, which belong to the services that read it.
            out[f"cpu {c.endpoint}"] = {"python_ms_net": c.python_ms_net, "aim_ms": None, "met": None,
                                        "counts": "the request, its event and the six projections it feeds"}
            continue
        kind = "write" if c.endpoint == SERVICE_WRITE else "read"
        out[f"cpu {c.endpoint}"] = {"python_ms_net": c.python_ms_net, "aim_ms": AIM_CPU_MS[kind],
                                    "met": c.python_ms_net <= AIM_CPU_MS[kind]}
    for endpoint in (*READS, WRITE):
        rate, limit = AIM_P99["write" if endpoint == WRITE else "read"]
        at = [s for s in steps if s.endpoint == endpoint and s.offered_rps == rate]
        if at:
            p99 = at[0].p99_ms if not at[0].gave_up else None
            out[f"p99 {endpoint} at {rate}/s"] = {"p99_ms": p99, "aim_ms": limit, "met": p99 is not None and p99 < limit}
    return out


def draw_sweep(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    steps = [Step(**s) for s in report["steps"]]
    endpoints = [name for name in report.get("classes", [*READS, WRITE]) if name != SERVICE_WRITE]  # no sweep
    figure = Figure(figsize=(4 * len(endpoints), 4))
    for axes, endpoint in zip(figure.subplots(1, len(endpoints), squeeze=False)[0], endpoints):
        for name, colour in ((endpoint, "tab:blue"), *(((FLOOR, "tab:gray"),) if endpoint != WRITE else ())):
            series = [s for s in steps if s.endpoint == name and s.p99_ms is not None]
            label = "floor (bare FastAPI + auth)" if name == FLOOR else "Binome"
            axes.plot([s.offered_rps for s in series], [s.p50_ms for s in series], "o--", color=colour,
                      label=f"{label} p50")
            axes.plot([s.offered_rps for s in series], [s.p99_ms for s in series], "o-", color=colour,
                      label=f"{label} p99")
        rate, limit = AIM_P99["write" if endpoint == WRITE else "read"]
        axes.axhline(limit, color="tab:red", linestyle=":", label=f"aim: p99 < {limit:.0f} ms at {rate}/s")
        axes.axvline(rate, color="tab:red", linestyle=":", alpha=0.4)
        axes.set(xlabel="offered rate (requests/s)", ylabel="latency (ms, log)", title=endpoint, yscale="log")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(f"binome up{' --workers ' + str(report['workers']) if report['workers'] else ''}: "
                    "latency from the scheduled start, open loop", fontsize=10)
    figure.tight_layout()
    figure.savefig(path.with_suffix(".svg"))
    figure.savefig(path.with_suffix(".png"), dpi=100)


def print_sweep(report: dict[str, Any]) -> None:
    print(f"\nCPU per request, ms (net of idle; gross in brackets); load average at start "
          f"{report['load_average_at_start']}")
    print(f"{'endpoint':>12} {'rate':>6} {'ok':>6} {'Python':>16} {'of it workers':>14} {'PostgreSQL':>16} "
          f"{'statements':>11}")
    for c in report["cpu"]:
        counted, workers = c.get("statements_per_request"), c.get("workers_ms_net")
        print(f"{c['endpoint']:>12} {c['rate']:>6} {c['ok']:>6} {c['python_ms_net']:>7} ({c['python_ms_gross']:>6}) "
              f"{'-' if workers is None else workers:>14} "
              f"{c['postgres_ms_net']:>7} ({c['postgres_ms_gross']:>6}) {'-' if counted is None else counted:>11}")
    for c in report["cpu"]:
        if c.get("top_statements"):
            print(f"\n{c['endpoint']}: {c['statements_per_request']} statements per request; the most frequent:")
            for query, calls in c["top_statements"]:
                print(f"  {calls:>6}  {query}")
    print(f"\n{'endpoint':>12} {'offered':>8} {'answered':>9} {'errors':>7} {'gave up':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for s in report["steps"]:
        print(f"{s['endpoint']:>12} {s['offered_rps']:>8} {s['answered_rps']:>9} {s['errors']:>7} {s['gave_up']:>8} "
              f"{s['p50_ms']!s:>8} {s['p99_ms']!s:>8}")
    print("\naims:")
    for name, aim in report["aims"].items():
        print(f"  {name}: {AIM_VERDICTS[aim['met']]} ({aim})")


# --------------------------------------------------------------------------- --mode shedding


@dataclass
class ShedStep:
    shedding: bool
    offered_rps: float
    goodput_rps: float
    shed_rps: float
    timed_out_rps: float
    p50_ms: float | None
    p99_ms: float | None


SHED_PATH = "/enrollment/v1/programmes"


async def saturating_rate(port: int, raw: bytes, concurrency: int, seconds: float) -> float:
    """Closed loop: ``concurrency`` clients back to back; the 200s per second."""
    done = 0
    deadline = time.monotonic() + seconds
    connections = Connections(port)

    async def client() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            status, _ = await connections.request(raw, 30)
            done += status == 200

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / seconds


def shed_summary(shedding: bool, rate: float, seconds: float, results: list[tuple[int, float]]) -> ShedStep:
    ok = sorted(s for status, s in results if status == 200)
    return ShedStep(
        shedding,
        round(rate, 1),
        round(len(ok) / seconds, 1),
        round(sum(1 for status, _ in results if status == 503) / seconds, 1),
        round(sum(1 for status, _ in results if status == 0) / seconds, 1),
        round(statistics.median(ok) * 1000, 1) if ok else None,
        round(percentile(ok, 0.99) * 1000, 1) if ok else None,
    )


def run_shedding(args: argparse.Namespace) -> dict[str, Any]:
    """Goodput and p99 against offered load (fractions of the saturating rate
    up to 2x), with the in-flight bound on and off: ``GET
    /enrollment/v1/programmes``, a page of 20 programmes."""
    seconds = args.step
    fractions = [0.5, 1.0, 1.5, 2.0]
    report: dict[str, Any] = {"mode": "shedding", "path": SHED_PATH, "patience_s": args.patience, "step_s": seconds,
                              "limit": args.limit, "load_average": list(os.getloadavg())}
    steps: list[ShedStep] = []
    extra = ("--workers", str(args.workers)) if args.workers else ()
    for shedding in [c == "on" for c in ([args.only] if args.only else ["on", "off"])]:
        with tempfile.TemporaryDirectory(prefix="binome-bench-api-") as tmp, PlatformProcess.start(
            Path(tmp), env=platform_env(shedding, args.limit), args=extra
        ) as platform:
            token = platform.token("bench-hr", "org-bench", ["hr_admin"])
            for i in range(20):
                platform.post(SHED_PATH, {"name": f"Programme {i}", "mode": "reverse"}, auth(token))
            raw = raw_request("GET", SHED_PATH, token)
            peak = asyncio.run(saturating_rate(platform.port, raw, args.limit, seconds / 2))
            print(f"  shedding={'on' if shedding else 'off'}: saturating rate {peak:.0f} requests/s", flush=True)
            report[f"saturating_rps_shedding_{'on' if shedding else 'off'}"] = round(peak, 1)
            for fraction in fractions:
                rate = max(1.0, peak * fraction)
                results = asyncio.run(open_loop(platform.port, lambda i: raw, rate, seconds, args.patience))
                step = shed_summary(shedding, rate, seconds, results)
                print(f"    {fraction:.2f}x: {step}", flush=True)
                steps.append(step)
                time.sleep(args.patience)  # let the abandoned requests drain before the next step
    report["steps"] = [asdict(s) for s in steps]
    return report


def draw_shedding(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    steps = [ShedStep(**s) for s in report["steps"]]
    figure = Figure(figsize=(10, 4))
    goodput, latency = figure.subplots(1, 2)
    for shedding, colour in ((True, "tab:green"), (False, "tab:red")):
        series = [s for s in steps if s.shedding is shedding]
        label = "shedding on" if shedding else "shedding off"
        goodput.plot([s.offered_rps for s in series], [s.goodput_rps for s in series], "o-", color=colour, label=label)
        latency.plot([s.offered_rps for s in series], [s.p99_ms or 0 for s in series], "o-", color=colour, label=label)
    goodput.set(xlabel="offered load (requests/s)", ylabel="goodput (200 within patience, /s)", title="Goodput")
    latency.set(xlabel="offered load (requests/s)", ylabel="p99 of the 200s (ms)", title="p99 latency")
    for axes in (goodput, latency):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path.with_suffix(".svg"))
    figure.savefig(path.with_suffix(".png"), dpi=100)


def print_shedding(report: dict[str, Any]) -> None:
    print(f"{'shedding':>8} {'offered':>8} {'goodput':>8} {'shed':>6} {'gave up':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for s in report["steps"]:
        print(f"{'on' if s['shedding'] else 'off':>8} {s['offered_rps']:>8} {s['goodput_rps']:>8} {s['shed_rps']:>6} "
              f"{s['timed_out_rps']:>8} {s['p50_ms']!s:>7} {s['p99_ms']!s:>7}")


# --------------------------------------------------------------------------- main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["sweep", "shedding"], default="sweep")
    parser.add_argument("--quick", action="store_true", help="steps of 5 s, fewer rates")
    parser.add_argument("--tiny", action="store_true", help="a tiny world and one-second steps (the integration test)")
    parser.add_argument("--world", choices=sorted(WORLDS), default="full", help="the world `binome demo` seeds")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false", help="CPU per request only")
    parser.add_argument("--workers", type=int, default=0, help="passed to `binome up --workers N` (0: not passed)")
    parser.add_argument("--step", type=float, help="seconds per rate step (default 10; 5 quick; shedding 20)")
    parser.add_argument("--cpu-step", type=float, default=10.0, help="seconds of the CPU step per endpoint class")
    parser.add_argument("--cpu-rate", type=float, default=50.0, help="reads per second of the CPU step (writes: half)")
    parser.add_argument("--idle", type=float, default=4.0, help="seconds of idle before each CPU step")
    parser.add_argument("--statements", action="store_true",
                        help="sweep mode: count PostgreSQL statements per request (pg_stat_statements preloaded)")
    parser.add_argument("--read-rates", type=lambda s: [float(x) for x in s.split(",")], default=None)
    parser.add_argument("--write-rates", type=lambda s: [float(x) for x in s.split(",")], default=None)
    parser.add_argument("--patience", type=float, default=2.0, help="seconds a client waits before giving up")
    parser.add_argument("--limit", type=int, default=16, help="shedding mode: the in-flight bound with shedding on")
    parser.add_argument("--only", choices=["on", "off"], help="shedding mode: one configuration only")
    parser.add_argument("--baseline", type=Path, help="another checkout (e.g. a work tree of main): CPU per request "
                        "of both, interleaved in one run (bench/out/api_baseline.json)")
    parser.add_argument("--baseline-hide", action="append", default=[], metavar="MODULE",
                        help="baseline mode: a module the baseline does not install (e.g. httptools)")
    parser.add_argument("--rounds", type=int, default=2, help="baseline mode: interleaved steps per class and side")
    parser.add_argument("--classes", type=lambda s: s.split(","), default=list(CLASSES),
                        help=f"endpoint classes, comma-separated (default: all, {','.join(CLASSES)})")
    parser.add_argument("--out", type=Path, help="the JSON report (default bench/out/api.json or api_shedding.json)")
    args = parser.parse_args(argv)
    if args.statements and (args.baseline is not None or args.mode != "sweep"):
        parser.error("--statements: the sweep mode only (one platform, started by the bench)")
    unknown = set(args.classes) - set(CLASSES)
    if unknown:
        parser.error(f"--classes: unknown {', '.join(sorted(unknown))}")
    args.classes = [name for name in CLASSES if name in args.classes]
    if args.tiny:
        args.world = "tiny"
        # Two-second CPU steps and idle windows: with less, one periodic burst
        # (a scheduler, a gauge) in an idle window, extrapolated over a step of
        # 20 reads, could make a net statement count negative.
        args.step, args.cpu_step, args.idle, args.cpu_rate = args.step or 1.0, 2.0, 2.0, 20.0
        args.read_rates, args.write_rates = args.read_rates or [20.0], args.write_rates or [10.0]
    elif args.quick:
        args.step = args.step or 5.0
        args.read_rates = args.read_rates or [100.0, 200.0, 400.0]
        args.write_rates = args.write_rates or [50.0, 100.0, 200.0]
    args.step = args.step or (20.0 if args.mode == "shedding" else 10.0)
    args.read_rates = args.read_rates or [50.0, 100.0, 200.0, 300.0, 400.0]
    args.write_rates = args.write_rates or [25.0, 50.0, 100.0, 150.0]
    default = "api_baseline.json" if args.baseline else "api.json" if args.mode == "sweep" else "api_shedding.json"
    args.out = args.out or OUT / default
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.baseline is not None:
        report = run_baseline(args)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print_baseline(report)
        print(f"\nwritten: {args.out}")
        return
    elif args.mode == "shedding":
        report = run_shedding(args)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        draw_shedding(report, args.out)
        print_shedding(report)
    else:
        report = run_sweep(args)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        draw_sweep(report, args.out)
        print_sweep(report)
    print(f"\nwritten: {args.out} and its .svg/.png")


if __name__ == "__main__":
    main()
