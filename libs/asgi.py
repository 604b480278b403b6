"""What the pure-ASGI middlewares (metrics, audit, body size, headers) share."""

from __future__ import annotations

from starlette.types import Message, Scope, Send


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


def app_path(scope: Scope) -> str:
    """The request's path as this app's router sees it (without a mount prefix).

    Under ``binome up`` a service app is mounted at ``/<service>``: Starlette
    keeps the full path in ``scope["path"]`` and the prefix in ``root_path``.
    """
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def source_of(scope: Scope) -> str:
    """The client address (the proxy's forwarded one when uvicorn trusts it)."""
    client = scope.get("client")
    return client[0] if client else "unknown"
