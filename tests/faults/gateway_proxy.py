"""A Modbus TCP gateway on loopback with the fault of real TCP-to-RTU gateways.

In front of one device it acts like a gateway to a serial bus: one request on the bus at
a time, each reply sent back with the transaction id of the request it answers. Its
fault: a reply the client stopped waiting for (the device was slower than the client's
timeout) is not thrown away but forwarded to the client's *current* connection, just
before the reply to the next request that arrives there. Which requests are slow is the
test's choice (:meth:`GatewayProxy.hold_replies_to`); the reply is held until the next
request so that every round hits the fault, with no timing luck.

Written for bifrost's fault tests on raw asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading

from bifrost._accepts import close_listener

MBAP = struct.Struct(">HHHB")


class GatewayProxy:
    """Forwards 127.0.0.1:<port> to a Modbus TCP device at ``target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self.late_replies_forwarded = 0
        self._slow_starts: set[int] = set()
        self._held: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._bus: asyncio.Lock | None = None
        self._upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"modbus://127.0.0.1:{self.port}"

    def hold_replies_to(self, *starts: int) -> None:
        """Replies to reads starting at these addresses come late (see the module)."""
        self._loop.call_soon_threadsafe(self._slow_starts.update, starts)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> GatewayProxy:
        self._thread.start()

        async def start() -> None:
            self._bus = asyncio.Lock()
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)
        return self

    def stop(self) -> None:
        async def stop() -> None:
            await close_listener(self._server)
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            if self._upstream is not None:
                self._upstream[1].close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> GatewayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding -----------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        assert self._bus is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while True:
                    header = await reader.readexactly(MBAP.size)
                    tid, _, length, _ = MBAP.unpack(header)
                    pdu = await reader.readexactly(length - 1)
                    async with self._bus:
                        await self._forward(writer, header + pdu, tid, pdu)
        except asyncio.CancelledError:
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _forward(
        self, writer: asyncio.StreamWriter, request: bytes, tid: int, pdu: bytes
    ) -> None:
        if self._held is not None:
            # The fault: a reply to a request from an earlier connection, delivered here.
            writer.write(self._held)
            self._held = None
            self.late_replies_forwarded += 1
        reply = await self._ask_device(request)
        reply = struct.pack(">H", tid) + reply[2:]
        start = struct.unpack(">H", pdu[1:3])[0] if len(pdu) >= 3 else -1
        if pdu[0] in (1, 2, 3, 4) and start in self._slow_starts:
            self._held = reply
            return
        writer.write(reply)
        await writer.drain()

    async def _ask_device(self, request: bytes) -> bytes:
        if self._upstream is None:
            self._upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        reader, writer = self._upstream
        writer.write(request)
        await writer.drain()
        header = await reader.readexactly(MBAP.size)
        length = MBAP.unpack(header)[2]
        return header + await reader.readexactly(length - 1)
