"""Goodput and latency of the assembled platform against offered load, with and without load shedding.

Drives ``binome up`` (started here as a subprocess on a fresh data dir, the
way users run it) over HTTP with an open-loop generator: requests leave on a
fixed schedule whatever the server does, and each request's latency counts
from its *scheduled* time, so a server that falls behind shows it. A client
gives up after ``--timeout`` seconds and closes its connection, as real
clients do. Goodput is the rate of 2xx answers received within that time.

For each mode it sweeps the offered rate up to twice the saturating rate
(the rate of the best goodput in the sweep), then prints goodput and p50/p99
per rate side by side:

* shedding: the default ``BINOME_MAX_CONCURRENT_REQUESTS`` (excess answered
  503 at once, requests of clients that left cancelled);
* no shedding: the limit raised out of reach (every request queued).

    .venv/bin/python bench/api.py            # about 3 minutes here
    .venv/bin/python bench/api.py --quick    # about 1 minute
    .venv/bin/python bench/api.py --rates 50,100,200 --seconds 5

The request is a typical authenticated read: a page of 50 participants of a
wave (GET /enrollment/v1/participants?wave_id={id}&limit=50). It writes
bench/out/api.json and draws bench/out/api.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.enrollment import mentee, programme_body, wave_body  # noqa: E402
from tests.support.platform_process import PlatformProcess, auth  # noqa: E402

OUT = Path(__file__).parent / "out"
NO_SHEDDING = "1000000"


@dataclass
class Step:
    mode: str
    offered: float
    sent: int = 0
    ok: int = 0
    shed: int = 0
    errors: int = 0
    timeouts: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    #: Answers other than 2xx and 503, by status.
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def goodput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        data.update(goodput=self.goodput, p50_ms=self.percentile(0.5), p99_ms=self.percentile(0.99))
        return data


class Connections:
    """Kept-alive HTTP/1.1 connections, a new one whenever none is free: an
    open-loop client never waits for a connection before it sends."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str, headers: dict[str, str]) -> int:
        reader, writer = self.free.pop() if self.free else await asyncio.open_connection(self.host, self.port)
        try:
            lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
            writer.write("\r\n".join(lines).encode())
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            status = int(status_line.split()[1])
        except BaseException:
            writer.close()  # a client that gives up closes its connection
            raise
        self.free.append((reader, writer))
        return status

    def close(self) -> None:
        for _, writer in self.free:
            writer.close()


async def open_loop(base_url: str, path: str, headers: dict[str, str], rate: float, seconds: float,
                    timeout: float, step: Step) -> None:
    url = urlsplit(base_url)
    connections = Connections(url.hostname, url.port)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []

    async def one(scheduled: float) -> None:
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        step.sent += 1
        try:
            status = await asyncio.wait_for(connections.get(path, headers), timeout - (loop.time() - scheduled))
        except TimeoutError:
            step.timeouts += 1
            return
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            step.errors += 1
            return
        if 200 <= status < 300:
            step.ok += 1
            step.latencies_ms.append((loop.time() - scheduled) * 1000)
        elif status == 503:
            step.shed += 1
        else:
            step.errors += 1
            step.statuses[status] = step.statuses.get(status, 0) + 1

    n = int(rate * seconds)
    for i in range(n):
        tasks.append(asyncio.create_task(one(start + i / rate)))
    await asyncio.gather(*tasks)
    step.seconds = seconds
    connections.close()


def seed(platform: PlatformProcess) -> tuple[str, dict[str, str]]:
    headers = auth(platform.token("bench-hr", "bench-org", ["hr_admin"], expires_in=3600))
    with platform.http as http:
        programme = http.post("/enrollment/v1/programmes", json=programme_body(), headers=headers).json()
        wave = http.post(f"/enrollment/v1/programmes/{programme['programme_id']}/waves", json=wave_body("FR"),
                         headers=headers).json()
        for i in range(50):
            http.post(f"/enrollment/v1/waves/{wave['wave_id']}/participants", json=mentee(f"B{i:04d}"), headers=headers)
    return f"/enrollment/v1/participants?wave_id={wave['wave_id']}&limit=50", headers


def sweep(mode: str, limit: str, rates: list[float], seconds: float, timeout: float, progress: Progress) -> list[Step]:
    with tempfile.TemporaryDirectory() as directory, PlatformProcess.start(
        Path(directory), env={"BINOME_MAX_CONCURRENT_REQUESTS": limit, "BINOME_RATE_LIMIT": "1000000/minute"}
    ) as platform:
        path, headers = seed(platform)
        steps = []
        task = progress.add_task(f"{mode}", total=len(rates))
        for rate in rates:
            progress.update(task, description=f"{mode}: {rate:g} req/s for {seconds:g} s")
            step = Step(mode, rate)
            asyncio.run(open_loop(platform.base_url, path, headers, rate, seconds, timeout, step))
            steps.append(step)
            progress.advance(task)
            time.sleep(1.0)  # let the server drain what the clients gave up on
        progress.remove_task(task)
        return steps


def draw(results: dict[str, list[Step]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (good, lat) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, steps in results.items():
        rates = [s.offered for s in steps]
        good.plot(rates, [s.goodput for s in steps], "o-", label=mode)
        lat.plot(rates, [s.percentile(0.99) or float("nan") for s in steps], "o-", label=f"{mode} p99")
        lat.plot(rates, [s.percentile(0.5) or float("nan") for s in steps], "o--", alpha=0.6, label=f"{mode} p50")
    good.set(xlabel="offered requests/s", ylabel="goodput (2xx within the client timeout)/s", title="Goodput")
    lat.set(xlabel="offered requests/s", ylabel="ms from scheduled time (2xx only)", yscale="log", title="Latency")
    for axis in (good, lat):
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rates, 4 s each")
    parser.add_argument("--rates", help="comma-separated offered rates (requests/s)")
    parser.add_argument("--seconds", type=float, default=None, help="duration of each rate")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds a client waits before it gives up")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")] if args.rates else (
        [50, 150, 300, 600] if args.quick else [50, 100, 150, 200, 300, 400, 600, 800]
    )
    seconds = args.seconds or (4.0 if args.quick else 8.0)
    results: dict[str, list[Step]] = {}
    with Progress() as progress:
        results["shedding"] = sweep("shedding", "32", rates, seconds, args.timeout, progress)
        results["no shedding"] = sweep("no shedding", NO_SHEDDING, rates, seconds, args.timeout, progress)

    table = Table(title=f"Open loop, client timeout {args.timeout:g} s: goodput/s, p50 / p99 ms (2xx), shed, timeouts")
    table.add_column("offered/s", justify="right")
    for mode in results:
        table.add_column(mode, justify="right")
    for i, rate in enumerate(rates):
        cells = []
        for steps in results.values():
            s = steps[i]
            p50, p99 = s.percentile(0.5), s.percentile(0.99)
            lat = "-" if p50 is None else f"{p50:.0f} / {p99:.0f}"
            cells.append(f"{s.goodput:.0f} | {lat} | shed {s.shed} | t/o {s.timeouts} | err {s.errors}")
        table.add_row(f"{rate:g}", *cells)
    Console().print(table)
    for mode, steps in results.items():
        peak = max(steps, key=lambda s: s.goodput)
        beyond = [s for s in steps if s.offered >= 2 * peak.offered] or [steps[-1]]
        ratio = beyond[0].goodput / peak.goodput if peak.goodput else 0.0
        print(f"{mode}: peak goodput {peak.goodput:.0f}/s at {peak.offered:g}/s offered; "
              f"at {beyond[0].offered:g}/s offered {beyond[0].goodput:.0f}/s = {ratio:.0%} of the peak")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "api.json").write_text(json.dumps({m: [s.summary() for s in st] for m, st in results.items()}, indent=2))
    draw(results, args.out / "api.png")
    print(f"figures: {args.out / 'api.json'}, picture: {args.out / 'api.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
