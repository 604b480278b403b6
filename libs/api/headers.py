"""Response headers that keep personal data out of caches and browsers' guesses.

Every ``/v1`` response may carry personal data: ``Cache-Control: no-store``
keeps it out of browser, proxy and CDN caches (RFC 9111), and
``X-Content-Type-Options: nosniff`` stops a browser from rendering a JSON or
CSV body as HTML. Pure ASGI, so streaming responses get them too. A header
the app set itself is kept; the mounted service app and the platform's root
app can both wrap a response without doubling a header.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.asgi import app_path

PERSONAL_PREFIX = "/v1"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        personal = app_path(scope).startswith(PERSONAL_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if personal:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
