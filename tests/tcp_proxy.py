"""A small TCP proxy on loopback that can stall or cut the connections through it.

With ``rate`` (bytes per second, each direction of each connection) it stands in for a
slow link: bytes wait in the sockets' buffers as they would behind a thin uplink.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from bifrost._accepts import close_listener


class FaultyProxy:
    """Forwards 127.0.0.1:<port> to a target; ``stall()``, ``cut()`` and ``heal()`` faults."""

    def __init__(self, target_port: int, rate: float | None = None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be a positive number of bytes per second, got {rate!r}")
        self.target_port = target_port
        self.rate = rate
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self.connections = 0

    def _call(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(5)

    def start(self) -> FaultyProxy:
        self._thread.start()

        async def start() -> None:
            self._flowing = asyncio.Event()
            self._flowing.set()
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rate = self.rate
        # Small reads on a slow link: what is not yet sent stays in the sender's socket.
        chunk = 65536 if rate is None else max(1, min(65536, int(rate / 50)))
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(chunk):
                await self._flowing.wait()  # a stall holds the bytes back
                if rate is not None:
                    now = loop.time()
                    if start + sent / rate < now:
                        start, sent = now, 0  # an idle link saves up no burst
                    sent += len(data)
                    await asyncio.sleep(max(0.0, start + sent / rate - now))
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)  # from the first step: a stop meanwhile closes it too
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self._writers.discard(writer)
            writer.close()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def stall(self) -> None:
        """Stop forwarding (connections stay open, answers never come)."""
        self._call(self._flowing.clear)

    def heal(self) -> None:
        """Forward again."""
        self._call(self._flowing.set)

    def cut(self) -> None:
        """Close every connection through the proxy (new ones are accepted)."""

        def close_all() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._call(close_all)

    def stop(self) -> None:
        async def stop() -> None:
            self._flowing.set()
            await close_listener(self._server)
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
