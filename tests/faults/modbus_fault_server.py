"""A Modbus TCP server on loopback that misbehaves on purpose, chosen by the address read.

Written for bifrost's fault tests on raw asyncio streams (not pymodbus' server), so
that every byte it sends is the test's choice. A request's start address picks the
behaviour (``FAULTS``); every other address answers correctly. Register ``a`` holds
``a`` (writes change it); coil ``a`` is on when ``a`` is odd.

Run it on its own thread with :meth:`start` / :meth:`stop` (or as a context manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bifrost._accepts import close_listener

MBAP = struct.Struct(">HHHB")

# Behaviour -> the start address that triggers it, 20 apart so that the one-tag reads
# of a split request never start on another behaviour's address.
_NAMES = [
    *(f"exception_{code}" for code in range(1, 12)),
    "busy_then_ok",
    "short_byte_count",
    "odd_byte_count",
    "zero_byte_count",
    "one_register",
    "extra_registers",
    "wrong_tid",
    "stale_then_ok",
    "wrong_unit",
    "wrong_function",
    "exception_for_other_function",
    "wrong_protocol_id",
    "length_too_long",
    "length_too_short",
    "length_zero",
    "half_frame",
    "half_frame_close",
    "garbage",
    "delayed",
    "slow_in_time",
    "silent",
    "close",
    "duplicate",
    "write_wrong_address",
    "write_wrong_echo",
    "swap_with_next",
    "drop_once",
]
FAULTS: dict[str, int] = {name: 1000 + 20 * i for i, name in enumerate(_NAMES)}
BEHAVIOUR_AT = {address: name for name, address in FAULTS.items()}
GARBAGE = b"\xde\xad\xbe\xef" * 8  # read as MBAP: protocol id 0xbeef


@dataclass
class _Send:
    data: bytes


@dataclass
class _Hold:
    """Send this reply only after the reply to the next request (out of order)."""

    data: bytes


@dataclass
class _Sleep:
    seconds: float


class _Close:
    pass


Action = _Send | _Sleep | _Close | _Hold


class ModbusFaultServer:
    """Start with :meth:`start`, stop with :meth:`stop`.

    Parameters
    ----------
    delay
        Seconds the ``delayed`` behaviour waits before answering (make it longer than
        the client's timeout); ``slow_in_time`` waits a tenth of it.
    """

    def __init__(self, delay: float = 0.6) -> None:
        self.delay = delay
        self.port = 0
        self.requests = 0
        self.connections = 0
        self.transaction_ids: list[int] = []
        self.overrides: dict[int, str] = {}  # address -> behaviour, changed while running
        self.registers: dict[int, int] = {}
        self._busy_count: dict[int, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"modbus://127.0.0.1:{self.port}"

    def set_behaviour(self, address: int, name: str | None) -> None:
        """Make reads at ``address`` behave as ``name`` (None: as the default map says)."""

        def change() -> None:
            if name is None:
                self.overrides.pop(address, None)
            else:
                self.overrides[address] = name

        self._loop.call_soon_threadsafe(change)

    def close_connections(self) -> None:
        """Close every client connection, as a device that drops idle ones does."""

        async def close() -> None:
            for writer in list(self._writers):
                writer.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ModbusFaultServer:
        self._thread.start()

        async def start() -> None:
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

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> ModbusFaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving --------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        held: bytes | None = None
        try:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while True:
                    tid, _, length, unit = MBAP.unpack(await reader.readexactly(MBAP.size))
                    pdu = await reader.readexactly(length - 1)
                    self.requests += 1
                    self.transaction_ids.append(tid)
                    actions = self._answer(tid, unit, pdu)
                    if actions and isinstance(actions[0], _Hold) and held is None:
                        held = actions[0].data
                        continue
                    if await self._perform(writer, actions):
                        return
                    if held is not None:
                        writer.write(held)
                        await writer.drain()
                        held = None
        except asyncio.CancelledError:
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    async def _perform(self, writer: asyncio.StreamWriter, actions: list[Action]) -> bool:
        """Carry out the actions; True when the connection is to be closed."""
        for action in actions:
            if isinstance(action, _Send | _Hold):
                writer.write(action.data)
                await writer.drain()
            elif isinstance(action, _Sleep):
                await asyncio.sleep(action.seconds)
            else:
                return True
        return False

    def _answer(self, tid: int, unit: int, pdu: bytes) -> list[Action]:
        function = pdu[0]
        if function == 0x2B:
            return [_Send(frame(tid, unit, _identification()))]
        address = struct.unpack(">H", pdu[1:3])[0]
        name = self.overrides.get(address, BEHAVIOUR_AT.get(address, "ok"))
        if name.startswith("exception_") and name != "exception_for_other_function":
            return [_Send(frame(tid, unit, bytes((function | 0x80, int(name.split("_")[1])))))]
        good = frame(tid, unit, self._good_pdu(pdu))
        behaviour = _BEHAVIOURS.get(name)
        if behaviour is not None:
            return behaviour(self, tid, unit, pdu, good)
        return [_Send(good)]

    def _good_pdu(self, pdu: bytes) -> bytes:
        function = pdu[0]
        address, value = struct.unpack(">HH", pdu[1:5])
        if function in (3, 4):
            words = [self.registers.get(address + i, (address + i) & 0xFFFF) for i in range(value)]
            return struct.pack(f">BB{value}H", function, 2 * value, *words)
        if function in (1, 2):
            bits = [(address + i) % 2 == 1 for i in range(value)]
            packed = bytearray((value + 7) // 8)
            for i, bit in enumerate(bits):
                packed[i // 8] |= bit << (i % 8)
            return bytes((function, len(packed))) + bytes(packed)
        if function == 16:
            words = struct.unpack(f">{value}H", pdu[6 : 6 + 2 * value])
            for i, word in enumerate(words):
                self.registers[address + i] = word
            return pdu[:5]
        if function in (5, 6):
            return pdu[:5]
        return bytes((function | 0x80, 1))

    def _busy_then_ok(self, tid: int, unit: int, pdu: bytes, good: bytes) -> list[Action]:
        # Busy twice, then an answer: bifrost's default busy_retries (2) gets through.
        address = struct.unpack(">H", pdu[1:3])[0]
        seen = self._busy_count.get(address, 0)
        self._busy_count[address] = seen + 1
        if seen % 3 < 2:
            return [_Send(frame(tid, unit, bytes((pdu[0] | 0x80, 6))))]
        return [_Send(good)]

    def _drop_once(self, tid: int, unit: int, pdu: bytes, good: bytes) -> list[Action]:
        # No reply the first time this address is read (per server), a good one after.
        address = struct.unpack(">H", pdu[1:3])[0]
        seen = self._busy_count.get(-address - 1, 0)
        self._busy_count[-address - 1] = seen + 1
        return [] if seen == 0 else [_Send(good)]

    def _delayed(self, tid: int, unit: int, pdu: bytes, good: bytes) -> list[Action]:
        return [_Sleep(self.delay), _Send(good)]

    def _slow_in_time(self, tid: int, unit: int, pdu: bytes, good: bytes) -> list[Action]:
        return [_Sleep(self.delay / 10), _Send(good)]


def frame(
    tid: int, unit: int, pdu: bytes, *, protocol: int = 0, length: int | None = None
) -> bytes:
    """An MBAP frame; ``length`` overrides the header's length field (to make it lie)."""
    return MBAP.pack(tid, protocol, len(pdu) + 1 if length is None else length, unit) + pdu


def _identification() -> bytes:
    objects = [(0, b"bifrost faults"), (1, b"FAULT-1"), (2, b"1.0")]
    body = bytes((0x2B, 0x0E, 1, 0x81, 0, 0, len(objects)))
    for object_id, value in objects:
        body += bytes((object_id, len(value))) + value
    return body


def _byte_count(size: Callable[[int, int], int]) -> Callable[..., list[Action]]:
    """A read reply whose byte count (and data) is ``size(expected, count)`` bytes."""

    def build(
        server: ModbusFaultServer, tid: int, unit: int, pdu: bytes, good: bytes
    ) -> list[Action]:
        count = struct.unpack(">H", pdu[3:5])[0]
        expected = 2 * count if pdu[0] in (3, 4) else (count + 7) // 8
        n = size(expected, count)
        data = bytes((0x6D, 0xA7)) * (n // 2 + 1)  # 0x6da7 = 28071, the value
        return [_Send(frame(tid, unit, bytes((pdu[0], n)) + data[:n]))]

    return build


def _tampered(**changes: Any) -> Callable[..., list[Action]]:
    """The good reply with its header or function code changed."""

    def build(
        server: ModbusFaultServer, tid: int, unit: int, pdu: bytes, good: bytes
    ) -> list[Action]:
        body = good[MBAP.size :]
        if "function" in changes:
            body = bytes((changes["function"](pdu[0]),)) + body[1:]
        return [
            _Send(
                frame(
                    changes.get("tid", lambda t: t)(tid),
                    changes.get("unit", lambda u: u)(unit),
                    body,
                    protocol=changes.get("protocol", 0),
                    length=changes["length"](len(body)) if "length" in changes else None,
                )
            )
        ]

    return build


def _stale_then_ok(
    server: ModbusFaultServer, tid: int, unit: int, pdu: bytes, good: bytes
) -> list[Action]:
    # A reply to the request before this one, carrying other registers, arrives first.
    stale = _byte_count(lambda expected, count: expected)(
        server, (tid - 1) & 0xFFFF, unit, pdu, good
    )
    return [*stale, _Send(good)]


def _write_echo(offset_address: int, flip_value: bool) -> Callable[..., list[Action]]:
    def build(
        server: ModbusFaultServer, tid: int, unit: int, pdu: bytes, good: bytes
    ) -> list[Action]:
        address, value = struct.unpack(">HH", pdu[1:5])
        if flip_value:
            value = value ^ 0xFF00 if pdu[0] == 5 else value + 1
        return [
            _Send(frame(tid, unit, struct.pack(">BHH", pdu[0], address + offset_address, value)))
        ]

    return build


_BEHAVIOURS: dict[str, Callable[..., list[Action]]] = {
    "busy_then_ok": ModbusFaultServer._busy_then_ok,
    "short_byte_count": _byte_count(lambda expected, count: expected - 2 if expected > 2 else 1),
    "odd_byte_count": _byte_count(lambda expected, count: expected - 1 if expected > 1 else 3),
    "zero_byte_count": _byte_count(lambda expected, count: 0),
    "one_register": _byte_count(lambda expected, count: 2),
    "extra_registers": _byte_count(lambda expected, count: expected + 2),
    "wrong_tid": _tampered(tid=lambda t: (t + 1) & 0xFFFF),
    "stale_then_ok": _stale_then_ok,
    "wrong_unit": _tampered(unit=lambda u: (u + 1) & 0xFF),
    "wrong_function": _tampered(function=lambda f: {3: 4, 4: 3, 1: 2, 2: 1}.get(f, f)),
    "exception_for_other_function": lambda s, tid, unit, pdu, good: [
        _Send(frame(tid, unit, bytes((0x80 | {3: 4, 4: 3, 1: 2, 2: 1}.get(pdu[0], 1), 2))))
    ],
    "wrong_protocol_id": _tampered(protocol=1),
    "length_too_long": _tampered(length=lambda n: n + 11),
    "length_too_short": _tampered(length=lambda n: n - 3),
    "length_zero": _tampered(length=lambda n: 0),
    "half_frame": lambda s, tid, unit, pdu, good: [_Send(good[: len(good) // 2])],
    "half_frame_close": lambda s, tid, unit, pdu, good: [_Send(good[: len(good) // 2]), _Close()],
    "garbage": lambda s, tid, unit, pdu, good: [_Send(GARBAGE)],
    "delayed": ModbusFaultServer._delayed,
    "slow_in_time": ModbusFaultServer._slow_in_time,
    "silent": lambda s, tid, unit, pdu, good: [],
    "close": lambda s, tid, unit, pdu, good: [_Close()],
    "duplicate": lambda s, tid, unit, pdu, good: [_Send(good), _Sleep(0.01), _Send(good)],
    "swap_with_next": lambda s, tid, unit, pdu, good: [_Hold(good)],
    "drop_once": ModbusFaultServer._drop_once,
    "write_wrong_address": _write_echo(1, False),
    "write_wrong_echo": _write_echo(0, True),
}
