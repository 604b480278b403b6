#!/usr/bin/env python
"""Goodput and p99 of the API against offered load, with and without shedding.

Run from the repository root::

    .venv/bin/python bench/api.py            # steps of 20 s
    .venv/bin/python bench/api.py --quick    # steps of 8 s

For each configuration, ``binome up`` runs as a subprocess (embedded stack,
as users run it): once with the default in-flight bound
(``BINOME_MAX_CONCURRENT_REQUESTS``, load shedding on) and once with a bound
so high that nothing is shed. The load is **open-loop**: requests start at a
fixed rate whatever the answers, as real clients do, and each client gives
up after ``--patience`` seconds (it disconnects; the platform cancels the
handler). The saturating rate is measured first (closed loop, as many
requests in flight as the bound); the offered loads are fractions of it up to
2x. *Goodput*: 200s answered within the patience, per second; p99 is over
those. The table is printed and written to ``bench/out/api.json``, and drawn
in ``bench/out/api.svg`` and ``.png``.

A request is ``GET /enrollment/v1/programmes`` (a page of 20 programmes from
PostgreSQL, through auth, audit, idempotency-free read path). The load
generator is a raw asyncio HTTP/1.1 client over keep-alive connections (as
HTTP clients and gateways keep them) so that it costs the shared cores as
little as possible; it still competes with the platform for them, which the
figures include.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.platform_process import PlatformProcess, auth  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
PATH = "/enrollment/v1/programmes"
NO_SHEDDING = 100_000


@dataclass
class Step:
    shedding: bool
    offered_rps: float
    goodput_rps: float
    shed_rps: float
    timed_out_rps: float
    p50_ms: float | None
    p99_ms: float | None


class Connections:
    """Keep-alive connections to the platform, as HTTP clients and gateways keep them.

    A request takes an idle connection or opens one; a client that gives up
    closes its connection (the server sees the disconnect and cancels).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, raw: bytes, patience: float) -> tuple[int, float]:
        """(status, seconds); status 0 when the client gave up or the connection failed."""
        start = time.perf_counter()
        connection = None
        try:
            async with asyncio.timeout(patience):
                connection = self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
                reader, writer = connection
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(
                    int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
            self.idle.append(connection)
            return status, time.perf_counter() - start
        except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError, ValueError, StopIteration):
            if connection is not None:
                connection[1].close()
            return 0, time.perf_counter() - start


def raw_request(token: str) -> bytes:
    headers = {**auth(token), "Host": "bench"}
    lines = [f"GET {PATH} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


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


async def open_loop(port: int, raw: bytes, rate: float, seconds: float, patience: float) -> list[tuple[int, float]]:
    """Start ``rate`` requests a second for ``seconds``, whatever the answers."""
    tasks = []
    connections = Connections(port)
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(connections.request(raw, patience)))
    return await asyncio.gather(*tasks)


def summarise(shedding: bool, rate: float, seconds: float, results: list[tuple[int, float]]) -> Step:
    ok = sorted(s for status, s in results if status == 200)
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000 if ok else None
    return Step(
        shedding,
        round(rate, 1),
        round(len(ok) / seconds, 1),
        round(sum(1 for status, _ in results if status == 503) / seconds, 1),
        round(sum(1 for status, _ in results if status == 0) / seconds, 1),
        round(statistics.median(ok) * 1000, 1) if ok else None,
        round(p99, 1) if p99 is not None else None,
    )


async def prepare(platform: PlatformProcess) -> bytes:
    token = platform.token("bench-hr", "org-bench", ["hr_admin"])
    for i in range(20):
        created = platform.http.post(PATH, json={"name": f"Programme {i}", "mode": "reverse"}, headers=auth(token))
        assert created.status_code == 201, created.text
    return raw_request(token)


def run_configuration(shedding: bool, fractions: list[float], seconds: float, patience: float, limit: int) -> tuple[float, list[Step]]:
    env = {
        "BINOME_MAX_CONCURRENT_REQUESTS": str(limit if shedding else NO_SHEDDING),
        "BINOME_RATE_LIMIT": "100000000/minute",  # one bench client: per-client limits are not what is measured
    }
    with tempfile.TemporaryDirectory(prefix="binome-bench-api-") as tmp, PlatformProcess.start(Path(tmp), env=env) as platform:
        raw = asyncio.run(prepare(platform))
        peak = asyncio.run(saturating_rate(platform.port, raw, limit, seconds / 2))
        print(f"  shedding={'on' if shedding else 'off'}: saturating rate {peak:.0f} requests/s", flush=True)
        steps = []
        for fraction in fractions:
            rate = max(1.0, peak * fraction)
            results = asyncio.run(open_loop(platform.port, raw, rate, seconds, patience))
            step = summarise(shedding, rate, seconds, results)
            print(f"    {fraction:.2f}x: {step}", flush=True)
            steps.append(step)
            time.sleep(patience)  # let the abandoned requests drain before the next step
        return peak, steps


def draw(steps: list[Step], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="steps of 8 s instead of 20 s")
    parser.add_argument("--patience", type=float, default=2.0, help="seconds a client waits before giving up")
    parser.add_argument("--limit", type=int, default=16, help="the in-flight bound with shedding on")
    parser.add_argument("--only", choices=["on", "off"], help="one configuration only (shedding on or off)")
    args = parser.parse_args()
    seconds = 8.0 if args.quick else 20.0
    fractions = [0.5, 1.0, 1.5, 2.0]
    results: dict[str, object] = {"path": PATH, "patience_s": args.patience, "step_s": seconds, "limit": args.limit,
                                  "load_average": list(os.getloadavg())}
    steps: list[Step] = []
    for shedding in [c == "on" for c in ([args.only] if args.only else ["on", "off"])]:
        peak, configuration = run_configuration(shedding, fractions, seconds, args.patience, args.limit)
        results[f"saturating_rps_shedding_{'on' if shedding else 'off'}"] = round(peak, 1)
        steps += configuration
    results["steps"] = [asdict(s) for s in steps]
    OUT.mkdir(exist_ok=True)
    (OUT / "api.json").write_text(json.dumps(results, indent=2) + "\n")
    draw(steps, OUT / "api")
    print(f"{'shedding':>8} {'offered':>8} {'goodput':>8} {'shed':>6} {'gave up':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for s in steps:
        print(f"{'on' if s.shedding else 'off':>8} {s.offered_rps:>8} {s.goodput_rps:>8} {s.shed_rps:>6} "
              f"{s.timed_out_rps:>8} {s.p50_ms!s:>7} {s.p99_ms!s:>7}")


if __name__ == "__main__":
    main()
