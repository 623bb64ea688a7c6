"""A TCP proxy on loopback that can make a database go away, for outage tests.

    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()            # listens on 127.0.0.1:<proxy.port>
    proxy.mode = REFUSE            # new connections closed at once, open ones cut (RST-like close)
    proxy.mode = BLACKHOLE         # connections accepted, nothing forwarded either way (a silent
                                   # outage: dropped packets, a dead NAT entry)
    proxy.mode = PASS              # back to normal for new connections
    await proxy.close()

Connections that lived through a blackhole stay silent after it ends — the bytes they sent are
gone, as after a real network loss — so the client must notice and replace them. Nothing of our
code is mocked: the application talks to the real PostgreSQL through real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib

PASS = "pass"
REFUSE = "refuse"
BLACKHOLE = "blackhole"


class _Link:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter | None) -> None:
        self.client = client
        self.upstream = upstream
        self.silenced = False  # once a blackhole swallowed bytes, this link never forwards again

    def cut(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self._mode = PASS
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        assert value in (PASS, REFUSE, BLACKHOLE), value
        self._mode = value
        if value == REFUSE:
            for link in list(self._links):
                link.cut()
        elif value == BLACKHOLE:
            for link in self._links:
                link.silenced = True

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url_for(self, url: str) -> str:
        """`url` (a database URL pointing at the target) rewritten to go through this proxy."""
        target = f"{self.target_host}:{self.target_port}"
        assert target in url, (target, url)
        return url.replace(target, f"{self.host}:{self.port}", 1)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == REFUSE:
            writer.transport.abort()
            return
        if self._mode == BLACKHOLE:
            link = _Link(writer, None)
            link.silenced = True
            self._links.add(link)
            try:
                await self._swallow(reader)
            finally:
                self._links.discard(link)
                link.cut()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer, link), self._pipe(up_reader, writer, link))
        finally:
            self._links.discard(link)
            link.cut()

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while await reader.read(65536):
                pass

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if link.silenced:
                    continue  # swallowed: the other side never hears of it
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            link.cut()
