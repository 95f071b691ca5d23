"""A Modbus TCP server on loopback that answers the way libmodbus' server does.

libmodbus' ``modbus_reply`` checks a read's quantity first (over 125 registers or 2000
bits: exception 3, ILLEGAL DATA VALUE), then its addresses (outside the mapping:
exception 2, ILLEGAL DATA ADDRESS). This one does the same with a mapping of several
readable ranges per table (libmodbus has one per table; holes between ranges are what
real devices have), a batch limit that may be below the protocol's, and choices for
what a too-large read gets (``oversize``: ``"value"`` as libmodbus, ``"address"``, or
``"silent"``) and for how requests that arrive together are answered (``pipelining``):

- ``"ok"``: every request, in order, each under its own transaction id (libmodbus);
- ``"first_only"``: only the first request of each burst read from the socket;
- ``"last_tid"``: every request answered under the last transaction id received (a
  gateway that keeps one id);
- ``"swap"``: the replies to the first two requests of a burst carry each other's id.

Register ``a`` holds ``a``; coil/discrete input ``a`` is on when ``a`` is odd. It never
writes (function codes other than 1-4 get exception 1). Run it on its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import threading
import time
from collections.abc import Mapping, Sequence

from bifrost._accepts import close_listener

MBAP = struct.Struct(">HHHB")
LIMITS = {1: 2000, 2: 2000, 3: 125, 4: 125}
TABLES = {1: "co", 2: "di", 3: "hr", 4: "ir"}
LAST = 65535


class ReferenceServer:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager).

    Parameters
    ----------
    mapping
        Readable ranges per table, ``{"hr": [(first, last), ...]}`` (inclusive); a table
        left out has nothing readable.
    max_batch
        Largest read per table (default: the protocol's 125 / 2000).
    """

    def __init__(
        self,
        mapping: Mapping[str, Sequence[tuple[int, int]]],
        *,
        max_batch: Mapping[str, int] | None = None,
        oversize: str = "value",
        pipelining: str = "ok",
    ) -> None:
        self.mapping = {t: list(mapping.get(t, ())) for t in TABLES.values()}
        self.max_batch = {t: (max_batch or {}).get(t, LIMITS[fc]) for fc, t in TABLES.items()}
        self.oversize = oversize
        self.pipelining = pipelining
        self.requests = 0  # requests received
        self.writes = 0  # requests that were not reads (never expected)
        self.refused: list[tuple[str, int, int, int]] = []  # (table, address, count, code)
        self.arrivals: list[float] = []  # monotonic time each request was read
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"modbus://127.0.0.1:{self.port}"

    def readable(self, table: str, first: int, count: int) -> bool:
        last = first + count - 1
        return any(a <= first and last <= b for a, b in self.mapping[table])

    def start(self) -> ReferenceServer:
        self._thread.start()

        async def listen() -> None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        asyncio.run_coroutine_threadsafe(listen(), self._loop).result(5)
        return self

    def stop(self) -> None:
        async def close() -> None:
            await close_listener(self._server)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        buffer = bytearray()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                buffer += data
                frames = []
                while len(buffer) >= 7:
                    tid, _, length, unit = MBAP.unpack_from(buffer)
                    if len(buffer) < 6 + length:
                        break
                    frames.append((tid, unit, bytes(buffer[7 : 6 + length])))
                    del buffer[: 6 + length]
                replies = self._answer(frames)
                if replies:
                    writer.write(b"".join(replies))
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, frames: list[tuple[int, int, bytes]]) -> list[bytes]:
        self.requests += len(frames)
        self.arrivals.extend([time.monotonic()] * len(frames))
        if self.pipelining == "first_only":
            frames = frames[:1]
        tids = [tid for tid, _, _ in frames]
        if self.pipelining == "last_tid":
            tids = [tids[-1]] * len(tids)
        elif self.pipelining == "swap" and len(tids) > 1:
            tids[0], tids[1] = tids[1], tids[0]
        replies = []
        for tid, (_, unit, pdu) in zip(tids, frames, strict=True):
            answer = self._pdu(pdu)
            if answer is not None:
                replies.append(MBAP.pack(tid, 0, len(answer) + 1, unit) + answer)
        return replies

    def _pdu(self, pdu: bytes) -> bytes | None:
        function = pdu[0]
        if function not in TABLES or len(pdu) != 5:
            self.writes += function not in TABLES
            return bytes((function | 0x80, 1))
        address, count = struct.unpack(">HH", pdu[1:5])
        table = TABLES[function]
        if not 1 <= count <= self.max_batch[table]:
            if self.oversize == "silent":
                return None
            code = 3 if self.oversize == "value" or count < 1 else 2
            self.refused.append((table, address, count, code))
            return bytes((function | 0x80, code))
        if address + count > 65536 or not self.readable(table, address, count):
            self.refused.append((table, address, count, 2))
            return bytes((function | 0x80, 2))
        if function in (3, 4):
            words = [(address + i) & 0xFFFF for i in range(count)]
            return bytes((function, 2 * count)) + struct.pack(f">{count}H", *words)
        bits = bytearray((count + 7) // 8)
        for i in range(count):
            if (address + i) % 2:
                bits[i // 8] |= 1 << (i % 8)
        return bytes((function, len(bits))) + bytes(bits)


def complement(ranges: Sequence[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    holes, at = [], first
    for a, b in sorted(ranges):
        if a > at:
            holes.append((at, a - 1))
        at = max(at, b + 1)
    if at <= last:
        holes.append((at, last))
    return holes


def request_bound(
    readable: Sequence[tuple[int, int]], batch: int, limit: int, resolution: int, last: int = LAST
) -> int:
    """The most requests a scan of ``[0, last]`` may take.

    Halving to each boundary (``log2(limit)`` reads and a check of the address found),
    one read per batch over each readable stretch, and over each unreadable one a read
    per ``resolution`` addresses plus the doubling up to it and the halving back.
    """
    halving = math.ceil(math.log2(limit)) + 2
    bound = 2 * halving  # finding the batch itself
    for a, b in readable:
        bound += math.ceil((b - a + 1) / batch) + halving  # the stretch, then its end
    for a, b in complement(readable, 0, last):
        steps = math.ceil(math.log2(resolution)) + 1
        bound += math.ceil((b - a + 1) / resolution) + 2 * steps
    return bound
