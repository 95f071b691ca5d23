"""A TCP proxy in front of a replay's server that plays dropouts and slow replies.

Protocol-agnostic: it forwards bytes. While a dropout is active it forwards nothing in
either direction (the device "stops answering": requests time out), and a connection
that lost bytes that way is closed at its next use once the dropout is over (its stream
cannot be trusted any more; the client reconnects). While a latency applies, every chunk
of reply is held back that long.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from bifrost._accepts import close_listener

__all__ = ["FaultProxy"]

_CHUNK = 65536

FaultState = Callable[[], tuple[bool, float]]
"""Returns (dropout active, reply latency in seconds) for the replay's current position."""


class FaultProxy:
    """Listens on the public port and forwards to the server's own port."""

    def __init__(self, state: FaultState) -> None:
        self._state = state
        self._server: asyncio.Server | None = None
        self._upstream = ("127.0.0.1", 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int, upstream: tuple[str, int]) -> int:
        """Listen on ``host:port`` (0: a free port); returns the port."""
        self._upstream = upstream
        self._server = await asyncio.start_server(self._accept, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Known from the first step on: a stop while the upstream connects closes it too.
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            self._writers.discard(writer)
            writer.close()
            return
        if writer.is_closing():  # stopped while connecting upstream
            self._writers.discard(writer)
            up_writer.close()
            return
        self._writers.add(up_writer)
        tainted = asyncio.Event()
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, tainted, reply=False)),
            asyncio.create_task(self._pump(up_reader, writer, tainted, reply=True)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.close()

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        tainted: asyncio.Event,
        *,
        reply: bool,
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await source.read(_CHUNK)
                if not data:
                    return
                dropout, latency = self._state()
                if dropout:
                    tainted.set()
                    continue
                if tainted.is_set():
                    return  # bytes were lost in a dropout: close, the client reconnects
                if reply and latency > 0:
                    await asyncio.sleep(latency)
                sink.write(data)
                await sink.drain()

    async def stop(self) -> None:
        """Stop listening and close every forwarded connection."""
        server, self._server = self._server, None
        await close_listener(server)
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
