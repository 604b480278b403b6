"""The assembled platform as users run it: ``binome up`` in a child process.

System tests (tests/system/) start the platform the way a newcomer does —
embedded PostgreSQL and broker in a fresh data directory, every service
mounted on one port — and inject faults from outside: kill a child process,
lock or alter a table through a connection of their own, stop the broker.

    with PlatformProcess.start(tmp_path) as platform:
        token = platform.token("hr-1", "org-1", ["hr_admin"])
        platform.http.get("/enrollment/v1/programmes", headers=auth(token))

The child runs ``python -m libs.cli up`` from this checkout (not an installed
``binome`` script), so a worktree tests its own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import psutil

from libs.auth.devkeys import mint
from libs.embedded.broker import free_port

REPOSITORY = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def eventually_equal(probe: Callable[[], Awaitable[T]], expected: T, *, timeout: float = 60.0) -> T:
    """Await ``probe`` until it returns ``expected`` (async tests: no blocking sleep)."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while value != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {expected!r} within {timeout}s, last saw {value!r}")
        await asyncio.sleep(0.25)
        value = await probe()
    return value


def eventually(probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.25, what: str = "") -> T:
    """Call ``probe`` until it returns something other than None/False; return it."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (httpx.HTTPError, OSError) as exc:  # the platform may be restarting
            last_error, value = exc, None
        if value is not None and value is not False:
            return value
        time.sleep(interval)
    raise TimeoutError(f"not within {timeout}s: {what or probe}" + (f" (last error: {last_error!r})" if last_error else ""))


@dataclass
class PlatformProcess:
    """One ``binome up`` child process over its own data directory."""

    data_dir: Path
    port: int
    env: dict[str, str]
    args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"binome-up-{self.port}.log"

    # -- lifecycle -------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        directory: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
        ready_timeout: float = 90.0,
    ) -> Iterator[PlatformProcess]:
        """A running platform; stopped (and its children reaped) on exit."""
        platform = cls.create(directory, env=env, args=args, port=port)
        platform.launch(ready_timeout=ready_timeout)
        try:
            yield platform
        finally:
            platform.stop()

    @classmethod
    def create(
        cls, directory: Path, *, env: Mapping[str, str] | None = None, args: tuple[str, ...] = (), port: int | None = None
    ) -> PlatformProcess:
        data_dir = directory / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("BINOME_")}
        full_env.update(
            {
                "BINOME_DATA_DIR": str(data_dir),
                "PYTHONPATH": str(REPOSITORY),
                "PYTHONUNBUFFERED": "1",
                # Short group joins: a consumer group forms in about a second.
                "BINOME_CONSUMER_SESSION_TIMEOUT_MS": "2000",
                # One process: the suite starts many platforms and each worker
                # is one more interpreter to start (tests/system/test_workers.py
                # runs two).
                "BINOME_WORKERS": "1",
            }
        )
        full_env.update(env or {})
        return cls(data_dir, port or free_port(), full_env, tuple(args))

    def launch(self, *, ready_timeout: float = 90.0) -> None:
        """Start ``binome up`` and wait until ``/readyz`` answers 200."""
        command = [sys.executable, "-m", "libs.cli", "up", "--port", str(self.port), "--log-format", "json", *self.args]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=REPOSITORY, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"binome up exited with {self.process.returncode}:\n{self.log_tail()}")
            return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200

        try:
            eventually(ready, timeout=timeout, what="/readyz 200")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log_tail()}") from None

    def stop(self, timeout: float = 30.0) -> int | None:
        """Ctrl-C, as a user stops it; kill if it hangs. Returns the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        """``kill -9`` of ``binome up`` itself: no clean-up runs in it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    # -- looking inside ----------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    def children(self) -> list[psutil.Process]:
        """Every process started under ``binome up`` (the broker, PostgreSQL...)."""
        return psutil.Process(self.pid).children(recursive=True)

    def child(self, marker: str) -> psutil.Process:
        """The child process whose command line contains ``marker`` (e.g. "tansu", "postgres -D")."""
        for proc in self.children():
            with contextlib.suppress(psutil.Error):
                if marker in " ".join(proc.cmdline()):
                    return proc
        raise LookupError(f"no child process of binome up runs {marker!r}")

    def post(self, path: str, body: dict, headers: dict[str, str]) -> dict:
        """POST ``body``; the call must succeed; its JSON answer."""
        with self.http as http:
            response = http.post(path, json=body, headers=headers)
        assert response.is_success, response.text
        return response.json()

    async def fetch(self, query: str, *args: object) -> list:
        """Rows of one statement, through a connection of the test's own (from outside)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    def sql(self, query: str, *args: object) -> list:
        """``fetch`` for tests that are not coroutines."""
        return asyncio.run(self.fetch(query, *args))

    def token(self, subject: str, organisation: str, roles: list[str], countries: list[str] = (), **kw) -> str:
        """A bearer token signed by this platform's dev key."""
        return mint(subject, organisation, roles, countries, data_dir=self.data_dir, **kw)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of the platform's /metrics (the sum over series matching ``labels``)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.base_url}/metrics", timeout=5).text
        total, found = 0.0, False
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
                    found = True
        return total if found else None

    @property
    def database_url(self) -> str:
        """The embedded PostgreSQL's ``binome`` database, for faults injected from
        outside: its private socket and the password ``binome up`` generated."""
        from libs.embedded.postgres import DATABASE, server_url

        return server_url(self.data_dir, DATABASE)
