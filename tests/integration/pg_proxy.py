"""A loopback TCP proxy in front of Postgres that can freeze its connections: a half-open
connection (the server or the network gone without a word) as a client sees it."""

from __future__ import annotations

import asyncio
import contextlib
import glob
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit


def _upstream(url: str) -> tuple[str | None, str | None, int]:
    """(unix socket path, host, port) of a Postgres URL."""
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    if socket_dir:
        port = parts.port or 5432
        found = glob.glob(f"{socket_dir}/.s.PGSQL.{port}")
        return found[0], None, port
    return None, parts.hostname or "127.0.0.1", parts.port or 5432


@dataclass
class PgProxy:
    """Forwards every connection to Postgres; `freeze()` stops the bytes of the connections
    open at that moment (both ways, sockets left open) until `thaw()`."""

    url: str
    port: int = 0
    connections: int = 0
    _frozen: list[asyncio.Event] = field(default_factory=list)
    _open: list[asyncio.Event] = field(default_factory=list)

    def proxied_url(self) -> str:
        """The same database, reached through the proxy."""
        parts = urlsplit(self.url)
        return urlunsplit(
            ("postgresql", f"{parts.username or 'postgres'}@127.0.0.1:{self.port}", parts.path,
             "", "")
        )  # fmt: skip

    def freeze(self) -> None:
        """Stop forwarding on every connection open now; new ones pass."""
        for gate in self._open:
            gate.clear()
        self._frozen = list(self._open)

    def thaw(self) -> None:
        """Forward again on the frozen connections."""
        for gate in self._frozen:
            gate.set()
        self._frozen = []

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                await gate.wait()
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path, host, port = _upstream(self.url)
        if path is not None:
            up_r, up_w = await asyncio.open_unix_connection(path)
        else:
            up_r, up_w = await asyncio.open_connection(host, port)
        self.connections += 1
        gate = asyncio.Event()
        gate.set()
        self._open.append(gate)
        await asyncio.gather(self._pipe(reader, up_w, gate), self._pipe(up_r, writer, gate))


@asynccontextmanager
async def pg_proxy(url: str) -> AsyncIterator[PgProxy]:
    """A proxy on a free loopback port in front of the server of `url`."""
    proxy = PgProxy(url)
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        proxy.thaw()
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)
