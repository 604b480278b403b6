"""Sending a webhook over HTTP without being turned against the network
Binome runs in (SSRF).

Outside dev mode an endpoint URL must be ``https``, carry no user info, and
its host must resolve only to public addresses: no loopback, private,
link-local (cloud metadata at 169.254.169.254), shared, reserved, multicast
or unspecified address, IPv4-mapped ones included. The check runs when the
endpoint is registered or changed, and again at every delivery: a name that
resolved to a public address at registration may point inside later (DNS
rebinding), so the sender connects to the very address it just checked
(the URL's host is kept for the ``Host`` header, TLS SNI and certificate
checks). Redirects are not followed and proxy settings of the environment
are ignored, so no other hop is ever reached. In dev mode (a laptop, the
tests) ``http`` and local addresses are allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

MAX_URL_LENGTH = 2048
#: Seconds a host name may take to resolve.
RESOLVE_TIMEOUT_S = 5.0
#: Seconds for one attempt (connect, send, first answer).
TIMEOUT_S = 10.0
#: What is kept of a receiver's error (no body is read).
MAX_ERROR = 300


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why."""


def check_form(url: str, *, dev_mode: bool) -> httpx.URL:
    """The parsed URL, if its form is acceptable (no DNS)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"at most {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeUrl(f"not a URL: {exc}") from None
    allowed = ("https", "http") if dev_mode else ("https",)
    if parsed.scheme not in allowed:
        raise UnsafeUrl("must be an https URL" if not dev_mode else "must be an http or https URL")
    if not parsed.host:
        raise UnsafeUrl("names no host")
    if parsed.userinfo:
        raise UnsafeUrl("must not carry a user name or password")
    if parsed.fragment:
        raise UnsafeUrl("must not carry a fragment")
    return parsed


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def addresses_of(url: httpx.URL, *, dev_mode: bool) -> list[str]:
    """The addresses ``url``'s host resolves to; outside dev mode every one must be public."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        resolving = asyncio.get_running_loop().getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
        infos = await asyncio.wait_for(resolving, RESOLVE_TIMEOUT_S)
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise UnsafeUrl(f"host {url.host!r} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeUrl(f"host {url.host!r} does not resolve")
    if not dev_mode:
        inside = [a for a in addresses if not is_public(a)]
        if inside:
            raise UnsafeUrl(f"host {url.host!r} resolves to a non-public address ({', '.join(inside)})")
    return addresses


async def check_url(url: str, *, dev_mode: bool) -> None:
    """Raise UnsafeUrl unless ``url`` may be registered. In dev mode only
    its form is checked (a receiver on the laptop may not be up yet)."""
    parsed = check_form(url, dev_mode=dev_mode)
    if not dev_mode:
        await addresses_of(parsed, dev_mode=False)


@dataclass(frozen=True)
class Answer:
    """One attempt: the HTTP status, or why there was none."""

    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookHttp:
    """Posts signed bodies; one client, no keep-alive (a pooled connection
    would outlive the address check it was opened after)."""

    def __init__(self, *, dev_mode: bool, timeout: float = TIMEOUT_S) -> None:
        self.dev_mode = dev_mode
        self.client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            parsed = check_form(url, dev_mode=self.dev_mode)
            address = (await addresses_of(parsed, dev_mode=self.dev_mode))[0]
        except UnsafeUrl as exc:
            return Answer(None, f"refused: {exc}")
        target = parsed.copy_with(host=address)
        headers = {**headers, "host": parsed.netloc.decode("ascii")}
        try:
            async with self.client.stream(
                "POST", target, content=body, headers=headers, extensions={"sni_hostname": parsed.host}
            ) as response:  # the body is never read: a receiver cannot flood us
                status = response.status_code
        except httpx.HTTPError as exc:
            return Answer(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR] or type(exc).__name__)
        return Answer(status, None if 200 <= status < 300 else f"HTTP {status}")

    async def aclose(self) -> None:
        await self.client.aclose()
