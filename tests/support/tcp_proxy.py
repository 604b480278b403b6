"""A TCP proxy in front of a real server, to cut it off and bring it back.

    proxy = await TcpProxy.to_database(database_url)
    pool = await create_pool(proxy.url)   # through the proxy
    await proxy.cut()                     # every connection dropped, new ones refused
    await proxy.restore()                 # the same address works again
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit

from tests.support.platform_process import free_port


@dataclass
class TcpProxy:
    connect_target: object  # () -> awaitable (reader, writer)
    port: int = field(default_factory=free_port)
    url: str = ""
    _server: asyncio.Server | None = None
    _pipes: set[asyncio.Task] = field(default_factory=set)

    @classmethod
    async def to_database(cls, database_url: str) -> TcpProxy:
        """A proxy to the PostgreSQL of ``database_url`` (TCP or Unix socket); ``url`` goes through it."""
        parts = urlsplit(database_url)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        if socket_dir:
            path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"
            target = lambda: asyncio.open_unix_connection(path)  # noqa: E731
        else:
            target = lambda: asyncio.open_connection(parts.hostname, parts.port or 5432)  # noqa: E731
        proxy = cls(target)
        credentials = parts.netloc.rpartition("@")[0]
        proxy.url = urlunsplit((parts.scheme, f"{credentials}@127.0.0.1:{proxy.port}", parts.path, "", ""))
        await proxy.restore()
        return proxy

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await self.connect_target()
        pipes = [asyncio.create_task(_pipe(client_reader, server_writer)), asyncio.create_task(_pipe(server_reader, client_writer))]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes)
        except asyncio.CancelledError:
            pass
        finally:
            self._pipes.difference_update(pipes)
            for writer in (client_writer, server_writer):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()
