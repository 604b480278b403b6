#!/usr/bin/env python
"""Python CPU per authenticated read, in process, beside another checkout's.

Run from the repository root::

    .venv/bin/python bench/request_cpu.py --baseline ../other-checkout   # about 2 min here
    .venv/bin/python bench/request_cpu.py --rounds 3 --requests 1000
    .venv/bin/python bench/request_cpu.py --profile pair                  # cProfile of this checkout's pair read
    .venv/bin/python bench/request_cpu.py --pace-ms 10                    # one request every 10 ms, as a worker at 200/s

``binome up`` (this checkout) runs as a subprocess in a temporary data
directory and ``binome demo`` seeds its small world (bench/api.py's). Then
each side (the baseline, this checkout) rebuilds, in a process of its own,
the app an HTTP worker of ``binome up --workers N`` serves
(``Platform.join`` over the running platform's database, ``http_app()``
behind ``CountedByWorker``, multiprocess metrics and a run directory of its
own, uvloop) and drives it with raw ASGI calls, one request at a time, no
sockets: what is measured is the request's Python (and asyncpg's), not
uvicorn's parsing. Per endpoint class (``participants``: a page of 50,
``pair``: one pair, ``rollout``: the dashboard), after a warm-up, batches of
``--batch`` requests; a batch's figure is the process's CPU time
(``time.process_time``, every thread) divided by its requests, so work a
request leaves behind (the audit trail's commit) counts too. The figure is
the median of the batches; the sides alternate ``--rounds`` times, so both
see the same machine. ``--pace-ms``: a pause after each request, as a
worker of ``binome up --workers 2`` sees at 200 requests a second (10 ms):
the pause's own wake-up counts (0.06 ms here), and the request then costs
about what ``api.py`` measures over HTTP at that rate, about twice its cost
back to back (bench/README.md, "Seventh pass"). Figures are printed and written to
``bench/out/request_cpu.json`` (``--out``); no aim is asserted.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("participants", "pair", "rollout")


# --------------------------------------------------------------------------- the driver (a child process per side)


def _scope(path: str, token: str) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it for ``GET path`` with a bearer token."""
    raw_path, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"accept", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "state": {},
    }


async def _request(app: Any, path: str, token: str) -> int:
    status = 0
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays: no disconnect
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path, token), receive, send)
    return status


async def _lifespan(app: Any) -> None:
    """The startup half of the lifespan protocol, as uvicorn runs it."""
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    started = asyncio.get_running_loop().create_future()

    async def send(message: dict[str, Any]) -> None:
        if not started.done():
            started.set_result(message["type"])

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    asyncio.get_running_loop().create_task(app(scope, messages.get, send))
    outcome = await started
    assert outcome == "lifespan.startup.complete", outcome


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    from libs.runtime.platform import Platform
    from libs.runtime.worker import CountedByWorker
    from libs.settings import get_settings
    from services import SERVICES

    settings = get_settings()
    platform = await Platform.join(settings, SERVICES, Path(spec["run_dir"]), 4)
    try:
        app = CountedByWorker(platform.http_app(), settings.in_dev_mode)
        await _lifespan(app)
        token, figures = spec["token"], {}
        for name in spec["classes"]:
            path = spec["paths"][name]
            for _ in range(spec["warmup"]):
                status = await _request(app, path, token)
                assert 200 <= status < 300, f"{name}: {status}"
            if spec.get("profile") == name:
                figures[name] = await _profiled(app, path, token, spec)
                continue
            batches = []
            for _ in range(spec["requests"] // spec["batch"]):
                start = time.process_time()
                for _ in range(spec["batch"]):
                    await _request(app, path, token)
                    if spec["pace_s"]:
                        await asyncio.sleep(spec["pace_s"])
                batches.append((time.process_time() - start) * 1000 / spec["batch"])
            figures[name] = {"median_ms": round(statistics.median(batches), 3), "min_ms": round(min(batches), 3),
                             "batches_ms": batches}
        return figures
    finally:
        await platform.shutdown()


async def _profiled(app: Any, path: str, token: str, spec: dict[str, Any]) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(spec["requests"]):
        await _request(app, path, token)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(spec.get("sort", "tottime")).print_stats(spec.get("lines", 45))
    return {"profile": out.getvalue()}


def drive_main(spec_path: str) -> None:
    """The child: this process's environment names the platform; the checkout is first on sys.path."""
    spec = json.loads(Path(spec_path).read_text())
    sys.path.insert(0, spec["checkout"])  # the side's own code (its libs and services)
    from libs.runtime import loop

    figures = loop.run(_drive(spec))
    print("FIGURES " + json.dumps(figures), flush=True)


# --------------------------------------------------------------------------- the parent


def broker_bootstrap(platform: Any) -> str:
    """The embedded broker's address (the worker's BINOME_KAFKA_BOOTSTRAP); no read uses it."""
    with contextlib.suppress(LookupError):
        for part in " ".join(platform.child("tansu").cmdline()).split():
            if part.startswith("tcp://"):
                return part.removeprefix("tcp://")
    return "127.0.0.1:9"


def run_side(checkout: Path, platform: Any, seeded: Any, args: argparse.Namespace, work: Path,
             profile: str | None = None) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    (run_dir / "metrics").mkdir()
    spec = {
        "checkout": str(checkout), "run_dir": str(run_dir), "token": seeded.token, "classes": args.classes,
        "warmup": args.warmup, "requests": args.requests, "batch": args.batch, "profile": profile,
        "sort": args.sort, "lines": args.lines, "pace_s": args.pace_ms / 1000,
        "paths": {
            "participants": f"/enrollment/v1/participants?programme_id={seeded.programme_id}&limit=50",
            "pair": f"/matching/v1/pairs/{seeded.pair_id}",
            "rollout": f"/insights/v1/programmes/{seeded.programme_id}/rollout",
        },
    }  # fmt: skip
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {k: v for k, v in platform.env.items() if k != "PYTHONPATH"}
    env.update({
        "BINOME_DATABASE_URL": platform.database_url,
        "BINOME_KAFKA_BOOTSTRAP": broker_bootstrap(platform),
        "BINOME_DEV_MODE": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics"),  # as a worker's (libs/runtime/run_dir.py)
        "PYTHONPATH": str(checkout),
    })  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--drive", str(spec_path)],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=1800,
    )
    for line in done.stdout.splitlines():
        if line.startswith("FIGURES "):
            return json.loads(line.removeprefix("FIGURES "))
    raise RuntimeError(f"the driver of {checkout} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout of the repository (its own code, this Python)")
    parser.add_argument("--rounds", type=int, default=2, help="each side's runs, alternating")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per class and run")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--classes", type=lambda s: s.split(","), default=list(CLASSES))
    parser.add_argument("--world", default="small", choices=("tiny", "small", "full"))
    parser.add_argument("--profile", choices=CLASSES, help="cProfile this checkout's requests of one class instead")
    parser.add_argument("--pace-ms", type=float, default=0.0, help="a pause after each request (a worker's pace)")
    parser.add_argument("--sort", default="tottime", help="the profile's order (pstats: tottime, cumulative, ...)")
    parser.add_argument("--lines", type=int, default=45, help="the profile's lines printed")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "request_cpu.json")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.drive:
        drive_main(args.drive)
        return
    sys.path.insert(0, str(ROOT))
    from bench.api import SEED_LIMIT, platform_env, seed
    from tests.support.platform_process import PlatformProcess

    load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="binome-bench-request-cpu-") as tmp:
        work = Path(tmp)
        with PlatformProcess.start(work / "platform", env=platform_env(limit=SEED_LIMIT), ready_timeout=180) as platform:
            print(f"seeding the {args.world} world through `binome demo`...", flush=True)
            seeded = seed(platform, args.world)
            if args.profile:
                print(run_side(ROOT, platform, seeded, args, work, profile=args.profile)[args.profile]["profile"])
                return
            sides = {"before": args.baseline.resolve()} if args.baseline else {}
            sides["after"] = ROOT
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {side: {c: [] for c in args.classes} for side in sides}
            for round_ in range(args.rounds):
                for side, checkout in sides.items():
                    figures = run_side(checkout, platform, seeded, args, work)
                    for name in args.classes:
                        runs[side][name].append(figures[name])
                    print(f"round {round_ + 1} {side:>6}: " + ", ".join(
                        f"{name} {figures[name]['median_ms']:.3f} ms" for name in args.classes), flush=True)
    report = {"world": args.world, "rounds": args.rounds, "requests": args.requests, "batch": args.batch,
              "pace_ms": args.pace_ms,
              "baseline": str(args.baseline) if args.baseline else None, "load_average_at_start": load,
              "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "runs": runs}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print_summary(runs, args, load)


def print_summary(runs: dict[str, dict[str, list[dict[str, Any]]]], args: argparse.Namespace, load: list[float]) -> None:
    """Per side: the median of its runs' medians, and its cheapest batch (a
    shared machine only ever adds to a batch's CPU time)."""
    print(f"\nPython CPU per request in process, ms: median of the runs' medians ({args.rounds} runs of "
          f"{args.requests // args.batch} batches of {args.batch}"
          + (f", a pause of {args.pace_ms:g} ms after each request" if args.pace_ms else ", back to back")
          + "), and the cheapest batch in brackets "
          f"(load average {load} at start, {[round(x, 2) for x in os.getloadavg()]} at end)")
    sides = list(runs)
    print(f"{'endpoint':>13}" + "".join(f" {side:>18}" for side in sides) + (" after/before" if len(sides) == 2 else ""))
    for name in args.classes:
        figures = {side: (statistics.median(r["median_ms"] for r in runs[side][name]),
                          min(r["min_ms"] for r in runs[side][name])) for side in sides}  # fmt: skip
        row = f"{name:>13}" + "".join(f" {f'{med:.3f} ({low:.3f})':>18}" for med, low in figures.values())
        if len(sides) == 2:
            (before, before_low), (after, after_low) = figures["before"], figures["after"]
            row += f" {after / before:.2f} ({after_low / before_low:.2f})"
        print(row)


if __name__ == "__main__":
    main()
