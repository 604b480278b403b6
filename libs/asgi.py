"""What the pure-ASGI middlewares (metrics, audit, body size) share."""

from __future__ import annotations

from starlette.types import Message, Send


class ResponseStatus:
    """Wraps ``send`` to note the response's status as it starts.

    ``status`` is None until the response has started; a middleware that
    records the request after the app returned or raised reads ``or 500``.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status: int | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)
