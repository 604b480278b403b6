"""The demo's HTTP client: the public APIs of ``binome up``, with dev tokens
minted from the platform's local key (the same data dir), an Idempotency-Key
on every POST, retries of what is safe to retry, and waits that poll read
endpoints until a fact has reached the service that needs it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from libs.auth.devkeys import mint

T = TypeVar("T")

HR = "hr"  # the actor key of the global HR admin
CLOCK = "clock"  # the actor that moves the platform's dev clock (role dev_clock, nothing else)


class DemoError(RuntimeError):
    """The demo cannot go on: an unexpected answer, or a fact that never arrived."""


class Api:
    """Calls as a given actor: ``HR``, a committee (``committee:<region>``) or
    a participant (its id). Concurrency is bounded; 429s and connection
    failures are retried (POSTs carry an Idempotency-Key, so a retry is safe)."""

    def __init__(
        self,
        base_url: str,
        organisation: str,
        data_dir: Path | str,
        *,
        concurrency: int = 8,
        wait_timeout_s: float = 120.0,
    ) -> None:
        self.organisation, self.data_dir = organisation, data_dir
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.gate = asyncio.Semaphore(concurrency)
        self.wait_timeout_s = wait_timeout_s
        self.run_key = uuid.uuid4()  # Idempotency-Keys are unique to this run
        self._tokens: dict[str, str] = {}
        self._committees: dict[str, list[str]] = {}
        self.requests = 0

    async def close(self) -> None:
        await self.http.aclose()

    # ------------------------------------------------------------------ tokens

    def add_committee(self, region: str, countries: Iterable[str]) -> str:
        actor = f"committee:{region}"
        self._committees[actor] = sorted(countries)
        return actor

    def token(self, actor: str) -> str:
        if actor not in self._tokens:
            slug = "".join(c if c.isalnum() else "-" for c in actor.lower())
            if actor == HR:
                token = mint("demo-hr-admin", self.organisation, ["hr_admin"], expires_in=12 * 3600,
                             data_dir=self.data_dir)
            elif actor == CLOCK:
                token = mint("demo-clock", self.organisation, ["dev_clock"], expires_in=12 * 3600,
                             data_dir=self.data_dir)
            elif actor in self._committees:
                token = mint(f"demo-{slug}", self.organisation, ["regional_committee"], self._committees[actor],
                             expires_in=12 * 3600, data_dir=self.data_dir)
            else:  # a participant acts as itself: the token's subject is its id
                token = mint(actor, self.organisation, ["participant"], expires_in=12 * 3600, data_dir=self.data_dir)
            self._tokens[actor] = token
        return self._tokens[actor]

    # ------------------------------------------------------------------ calls

    async def request(
        self,
        method: str,
        path: str,
        *,
        actor: str = HR,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        ok: Iterable[int] = (200, 201),
        key: str | None = None,
    ) -> httpx.Response:
        """One call; a status outside ``ok`` raises DemoError with the problem's detail."""
        hdrs = {"Authorization": f"Bearer {self.token(actor)}", **(headers or {})}
        if method == "POST":
            hdrs["Idempotency-Key"] = str(uuid.uuid5(self.run_key, key or f"{path}:{uuid.uuid4()}"))
        params = {k: v for k, v in (params or {}).items() if v is not None}
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((httpx.TransportError, _Throttled)),
            stop=stop_after_attempt(8),
            wait=_wait,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with self.gate:
                        self.requests += 1
                        response = await self.http.request(method, path, json=json, params=params, headers=hdrs)
                    if response.status_code == 429:
                        raise _Throttled(response)
        except httpx.TransportError as exc:
            raise DemoError(f"{method} {path}: {exc!r} (is `binome up` running at {self.http.base_url}?)") from None
        except _Throttled as exc:
            response = exc.response  # throttled every time: reported below
        if response.status_code in ok:
            return response
        raise DemoError(f"{method} {path} as {actor}: {response.status_code} {_problem(response)}")

    async def get(self, path: str, **kw: Any) -> Any:
        return (await self.request("GET", path, **kw)).json()

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return (await self.request("POST", path, json=body if body is not None else {}, **kw)).json()

    async def put(self, path: str, body: Any, **kw: Any) -> Any:
        return (await self.request("PUT", path, json=body, **kw)).json()

    async def pages(self, path: str, params: dict[str, Any] | None = None, *, actor: str = HR) -> list[dict]:
        """Every item of a cursor-paginated list."""
        items: list[dict] = []
        cursor = None
        while True:
            page = await self.get(path, params={**(params or {}), "limit": 200, "cursor": cursor}, actor=actor)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    async def wait_for(
        self,
        what: str,
        probe: Callable[[], Awaitable[T | None]],
        timeout_s: float | None = None,
        *,
        progress: Callable[[], Any] | None = None,
    ) -> T:
        """Poll ``probe`` until it returns something (not None/False); a clear
        error naming ``what`` after the timeout. Consumers are asynchronous:
        this is how the demo knows a fact reached the service that needs it.
        With ``progress`` (a value that changes while the service catches up),
        the timeout counts from the last change: a slow consumer is waited
        for as long as it moves, a stuck one is reported."""
        timeout = timeout_s or self.wait_timeout_s
        deadline = time.monotonic() + timeout
        seen = None

        def out_of_time(state: RetryCallState) -> bool:
            nonlocal deadline, seen
            if progress is not None and (now_seen := progress()) != seen:
                seen, deadline = now_seen, time.monotonic() + timeout
            return time.monotonic() > deadline

        polling = AsyncRetrying(
            retry=retry_if_result(lambda result: result is None or result is False),
            stop=out_of_time,
            wait=wait_exponential(multiplier=0.05, exp_base=1.5, max=0.5 if progress is None else 2.0),
        )
        async def look() -> T | None:  # a coroutine function, which tenacity awaits (a probe may be a lambda)
            return await probe()

        try:
            return await polling(look)
        except RetryError:
            raise DemoError(
                f"timed out after {timeout:.0f} s waiting for {what}"
                + (" (no progress meanwhile)" if progress is not None else "")
                + "; are the platform's consumers running (see the `binome up` log)?"
            ) from None


class _Throttled(Exception):
    """A 429: tried again after the ``Retry-After`` it names."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__("429")
        self.response = response
        self.retry_after = float(response.headers.get("Retry-After", "1"))


def _wait(state: RetryCallState) -> float:
    """A throttled call waits as told; a transport error a little longer each time."""
    assert state.outcome is not None
    failure = state.outcome.exception()
    return failure.retry_after if isinstance(failure, _Throttled) else 0.2 * state.attempt_number


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title") or ""
        errors = body.get("errors")
        return f"{detail} {errors}" if errors else str(detail)
    return str(body)[:300]
