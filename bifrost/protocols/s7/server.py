"""Glue between the simulated plant and a python-snap7 S7 server.

The server's memory areas are ``bytearray`` objects the binding owns; NumPy views on
them are the plant's byte image. After every batch of steps the plant calls
:meth:`S7Binding.publish`, which encodes the snapshot into a copy of DB1 (one vectorised
assignment per S7 type) and the auxiliary channels into DB100 (one cast), then swaps the
bytes in with one slice copy per block under the server's area lock, so a request always
sees one step.

snap7's server is a test double, not a PLC. :class:`S7Server` extends it with what a PLC
does and the plant needs (it relies on python-snap7 3.3's request hooks; the tests fail
if those change):

- a bit write (transport size BIT) changes that bit only; snap7 3.3 stores the value
  byte over the whole byte, clearing the neighbouring bits;
- writes are checked against a per-bit mask of writable memory and refused with the
  item return code a PLC uses (0x03 access denied, 0x05 out of range, 0x0A no object);
- accepted writes are reported, so the plant feeds the written tags to its model;
- :meth:`S7Server.stop` cuts the open connections (snap7 would answer them once more);
- read requests and items are counted, so tests can check what a client sent;
- ``put_get = False`` refuses every read and write in the reply's header, as an
  S7-1200/1500 with PUT/GET access off does.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from snap7.datatypes import S7Area, S7WordLen
from snap7.s7protocol import S7Function, S7PDUType
from snap7.server import Server
from snap7.type import SrvArea

from bifrost.exceptions import ConfigurationError
from bifrost.model import DataType
from bifrost.protocols.s7.address import S7Address, parse_s7_address
from bifrost.sim.tagmap import (
    S7_AUX_DB,
    S7_AUX_MAX,
    S7_IO_SIZE,
    S7_MARKER_SIZE,
    S7_PLANT_DB,
    S7_PLANT_DB_SIZE,
    S7_SCRATCH_DB,
    S7_SCRATCH_DB_SIZE,
)
from bifrost.tags import TagTable

__all__ = ["S7Binding", "S7Server"]

OK = 0xFF
ACCESS_DENIED = 0x03
OUT_OF_RANGE = 0x05
NO_OBJECT = 0x0A
FUNCTION_REFUSED = 0x8104  # header error class 0x81, code 0x04
_SRV_AREA = {S7Area.DB: SrvArea.DB, S7Area.MK: SrvArea.MK, S7Area.PE: SrvArea.PE}
_SRV_AREA[S7Area.PA] = SrvArea.PA
_AREA_OF = {"DB": S7Area.DB, "M": S7Area.MK, "I": S7Area.PE, "Q": S7Area.PA}
Key = tuple[S7Area, int]
WriteHook = Callable[[Key, int, int | None, bytes], int]


def quiet_snap7() -> None:
    """Keep snap7's per-request warnings (refused reads...) out of notebooks."""
    logger = logging.getLogger("snap7")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


class S7Server(Server):
    """snap7's server with PLC-like bit writes, write protection and request counters.

    Parameters
    ----------
    on_write
        Called on a server thread for every write request with ``(area, db)``, the byte
        offset, the bit number (None for byte writes) and the data; returns the item
        return code (0xFF accepts). Without it every registered byte is writable.
    """

    def __init__(self, on_write: WriteHook | None = None) -> None:
        super().__init__(log=False)
        self.read_requests = 0
        self.read_items = 0
        self.write_requests = 0
        self._on_write = on_write
        # False answers reads and writes as a CPU with PUT/GET access off does: the whole
        # request refused in the reply's header (error class 0x81, code 0x04).
        self.put_get = True
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()

    @property
    def bound_port(self) -> int:
        """The TCP port the server listens on (after ``start_to``)."""
        if self.server_socket is None:
            raise ConfigurationError("the S7 server is not listening")
        return int(self.server_socket.getsockname()[1])

    def reset_counters(self) -> None:
        """Set the request counters back to zero."""
        self.read_requests = self.read_items = self.write_requests = 0

    def _handle_client(self, client_socket: socket.socket, address: tuple[str, int]) -> None:
        with self._sockets_lock:
            self._sockets.add(client_socket)
        try:
            super()._handle_client(client_socket, address)
        finally:
            with self._sockets_lock:
                self._sockets.discard(client_socket)

    def stop(self) -> int:
        """Stop listening and cut every open connection."""
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        result: int = super().stop()
        return result

    def _handle_read_area(self, request: dict[str, Any], client_address: tuple[str, int]) -> bytes:
        self.read_requests += 1
        self.read_items += int(request.get("parameters", {}).get("item_count", 1))
        if not self.put_get:
            return bytes(self._build_error_response(request, FUNCTION_REFUSED))
        response: bytes = super()._handle_read_area(request, client_address)
        return response

    def _handle_write_area(self, request: dict[str, Any], client_address: tuple[str, int]) -> bytes:
        self.write_requests += 1
        if not self.put_get:
            return bytes(self._build_error_response(request, FUNCTION_REFUSED))
        raw = request.get("raw_parameters", b"")
        data = (request.get("data") or {}).get("data", b"")
        if len(raw) < 14 or raw[1] != 1 or not data:
            return bytes(super()._build_error_response(request, 0x8104))
        _, _, _, word_len, _count, db, area_code, high, low = struct.unpack(">BBBBHHBBH", raw[2:14])
        address = (high << 16) | low  # a bit address: byte * 8 + bit
        try:
            key: Key = (S7Area(area_code), db if area_code == S7Area.DB else 0)
        except ValueError:
            code = NO_OBJECT
        else:
            bit = address & 7 if word_len == S7WordLen.BIT else None
            payload = bytes(data[:1]) if bit is not None else bytes(data)
            code = self._write(key, address >> 3, bit, payload)
        header = struct.pack(
            ">BBHHHHBB", 0x32, S7PDUType.ACK_DATA, 0, request["sequence"], 2, 1, 0, 0
        )
        return header + struct.pack(">BB", S7Function.WRITE_AREA, 1) + bytes([code])

    def _write(self, key: Key, start: int, bit: int | None, data: bytes) -> int:
        if self._on_write is not None:
            return self._on_write(key, start, bit, data)
        memory = self.memory_areas.get(key)
        if memory is None:
            return NO_OBJECT
        with self.area_locks[key]:
            return write_into(memory, start, bit, data, None)


def write_into(
    memory: bytearray,
    start: int,
    bit: int | None,
    data: bytes,
    writable: npt.NDArray[np.uint8] | None,
) -> int:
    """Apply one write to ``memory`` as a PLC does; return the item return code.

    ``writable`` is a per-byte mask of the bits clients may change (None: all).
    """
    if bit is None:
        end = start + len(data)
        if end > len(memory):
            return OUT_OF_RANGE
        if writable is not None and not (writable[start:end] == 0xFF).all():
            return ACCESS_DENIED
        memory[start:end] = data
        return OK
    if start >= len(memory):
        return OUT_OF_RANGE
    if writable is not None and not writable[start] & (1 << bit):
        return ACCESS_DENIED
    if data[0] & 1:
        memory[start] |= 1 << bit
    else:
        memory[start] &= ~(1 << bit) & 0xFF
    return OK


@dataclass(frozen=True, slots=True)
class _Group:
    """Numeric tags of one S7 type, encoded in one go into the data block."""

    names: tuple[str, ...]
    dtype: DataType
    scales: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.float64]
    index: npt.NDArray[np.intp]  # (n, size): the bytes of each value


class S7Binding:
    """The plant's S7 server: memory areas, encoder, write tracking and lifecycle.

    Parameters
    ----------
    tags
        The plant's S7 tag table (every address in DB1).
    lock
        The plant's lock, held around publish/collect and taken by the write hook.
    aux
        Number of auxiliary channels; DB100 holds the first 16384 of them as REALs.
    db, db_size
        The data block the tags live in (default: the plant's DB1 of 64 bytes).
    plant_areas
        Whether the plant's other areas (scratch DB2, auxiliary DB100, merkers, inputs,
        outputs) are served too; a replay serves its one data block only.
    """

    protocol = "s7"

    def __init__(
        self,
        tags: TagTable,
        lock: threading.RLock,
        *,
        aux: int,
        db: int = S7_PLANT_DB,
        db_size: int = S7_PLANT_DB_SIZE,
        plant_areas: bool = True,
    ) -> None:
        self._lock = lock
        self._aux = min(aux, S7_AUX_MAX) if plant_areas else 0
        self._db = db
        self._memory: dict[Key, bytearray] = {(S7Area.DB, db): bytearray(db_size)}
        if plant_areas:
            if db in (S7_SCRATCH_DB, S7_AUX_DB):
                raise ConfigurationError(f"DB{db} is one of the plant's own data blocks")
            self._memory.update(
                {
                    (S7Area.DB, S7_SCRATCH_DB): bytearray(S7_SCRATCH_DB_SIZE),
                    (S7Area.DB, S7_AUX_DB): bytearray(4 * max(self._aux, 1)),
                    (S7Area.MK, 0): bytearray(S7_MARKER_SIZE),
                    (S7Area.PE, 0): bytearray(S7_IO_SIZE),
                    (S7Area.PA, 0): bytearray(S7_IO_SIZE),
                }
            )
        self._writable = {
            key: np.full(len(memory), 0xFF if key[0] in (S7Area.MK, S7Area.PA) else 0, np.uint8)
            for key, memory in self._memory.items()
        }
        if plant_areas:
            self._writable[(S7Area.DB, S7_SCRATCH_DB)][:] = 0xFF
        plant_key = (S7Area.DB, db)
        self._plant = np.frombuffer(self._memory[plant_key], dtype=np.uint8)
        aux_memory = self._memory[(S7Area.DB, S7_AUX_DB)] if plant_areas else bytearray()
        self._aux_view = np.frombuffer(aux_memory, dtype=">f4")
        self._addresses: list[tuple[str, S7Address, float, float]] = []
        used = np.zeros(db_size * 8, dtype=np.bool_)
        self._owner_byte = np.full(db_size, -1, dtype=np.intp)
        self._owner_bit: dict[tuple[int, int], int] = {}
        grouped: dict[DataType, list[int]] = {}
        self._strings: list[int] = []
        self._bits: list[int] = []
        for i, tag in enumerate(tags):
            a = parse_s7_address(tag.address)
            if a.area != "DB" or a.db != db or a.end > db_size:
                raise ConfigurationError(f"tag {tag.name!r}: {a} is outside DB{db}")
            bits = (
                slice(a.offset * 8 + a.bit, a.offset * 8 + a.bit + 1)
                if a.is_bit
                else slice(a.offset * 8, a.end * 8)
            )
            if used[bits].any():
                raise ConfigurationError(f"tag {tag.name!r}: {a} overlaps another tag")
            used[bits] = True
            self._addresses.append((tag.name, a, tag.scale, tag.offset))
            if a.is_bit:
                self._bits.append(i)
                self._owner_bit[(a.offset, a.bit)] = i
                if tag.writable:
                    self._writable[plant_key][a.offset] |= 1 << a.bit
                continue
            self._owner_byte[a.offset : a.end] = i
            if tag.writable:
                self._writable[plant_key][a.offset : a.end] = 0xFF
            if a.dtype is DataType.STRING:
                self._strings.append(i)
            else:
                grouped.setdefault(a.dtype, []).append(i)
        self._groups = [self._make_group(dtype, members) for dtype, members in grouped.items()]
        self._bit_byte = np.array([self._addresses[i][1].offset for i in self._bits], np.intp)
        self._bit_mask = np.array(
            [1 << self._addresses[i][1].bit for i in self._bits], dtype=np.uint8
        )
        self._dirty: set[int] = set()
        self._server: S7Server | None = None
        self.url = ""

    def _make_group(self, dtype: DataType, members: list[int]) -> _Group:
        addrs = [self._addresses[i][1] for i in members]
        starts = np.array([a.offset for a in addrs], dtype=np.intp)
        return _Group(
            names=tuple(self._addresses[i][0] for i in members),
            dtype=dtype,
            scales=np.array([self._addresses[i][2] for i in members], dtype=np.float64),
            offsets=np.array([self._addresses[i][3] for i in members], dtype=np.float64),
            index=starts[:, None] + np.arange(dtype.size, dtype=np.intp)[None, :],
        )

    @property
    def server(self) -> S7Server | None:
        """The running snap7 server (for tests: request counters), or None."""
        return self._server

    # -- plant side (called with the plant's lock held) -----------------------------------
    def publish(self, snapshot: Mapping[str, Any], aux: npt.NDArray[np.uint16]) -> None:
        """Encode a snapshot (and the auxiliary channels) into the memory areas."""
        image = self._plant.copy()  # keeps bytes no tag owns (clients' writes there)
        for g in self._groups:
            values = np.array([snapshot[name] for name in g.names], dtype=np.float64)
            raw = (values - g.offsets) / g.scales
            if g.dtype.is_integer:
                low, high = g.dtype.bounds()
                raw = np.clip(np.rint(raw), low, high)
            encoded = raw.astype(g.dtype.numpy_dtype.newbyteorder(">"))
            image[g.index] = encoded.view(np.uint8).reshape(g.index.shape)
        for i in self._strings:
            name, a, _, _ = self._addresses[i]
            text = str(snapshot[name]).encode("latin-1", "replace")[: a.length]
            image[a.offset : a.end] = np.frombuffer(
                bytes((a.length, len(text))) + text.ljust(a.length, b"\x00"), dtype=np.uint8
            )
        if self._bits:
            on = np.array([bool(snapshot[self._addresses[i][0]]) for i in self._bits])
            # Clear every tag bit, then set those that are on (np.bitwise_or.at: several
            # bits may share a byte).
            np.bitwise_and.at(image, self._bit_byte, ~self._bit_mask)
            np.bitwise_or.at(image, self._bit_byte[on], self._bit_mask[on])
        with self._area_lock((S7Area.DB, self._db)):
            self._plant[:] = image
        if self._aux:
            aux_f4 = aux[: self._aux].astype(">f4")
            with self._area_lock((S7Area.DB, S7_AUX_DB)):
                self._aux_view[: len(aux_f4)] = aux_f4

    def _area_lock(self, key: Key) -> contextlib.AbstractContextManager[Any]:
        # The server reads an area under its own lock: take it so a reader never sees
        # half a step. Before the server exists nobody reads.
        server = self._server
        if server is None:
            return contextlib.nullcontext()
        lock: contextlib.AbstractContextManager[Any] = server.area_locks[key]
        return lock

    def collect_writes(self) -> dict[str, Any]:
        """Values of the tags clients wrote since the last call, decoded from DB1."""
        writes: dict[str, Any] = {}
        for i in sorted(self._dirty):
            name, a, scale, offset = self._addresses[i]
            chunk = self._plant[a.offset : a.end]
            if a.is_bit:
                writes[name] = bool((int(chunk[0]) >> a.bit) & 1)
            elif a.dtype is DataType.STRING:
                current = min(int(chunk[1]), a.length)
                writes[name] = bytes(chunk[2 : 2 + current]).decode("latin-1")
            else:
                raw = chunk.view(a.dtype.numpy_dtype.newbyteorder(">"))[0].item()
                writes[name] = raw * scale + offset if (scale, offset) != (1.0, 0.0) else raw
        self._dirty.clear()
        return writes

    # -- server side (runs on the server's client threads) --------------------------------
    def _on_write(self, key: Key, start: int, bit: int | None, data: bytes) -> int:
        memory = self._memory.get(key)
        if memory is None:
            return NO_OBJECT
        with self._lock, self._area_lock(key):
            code = write_into(memory, start, bit, data, self._writable[key])
            if code != OK or key != (S7Area.DB, self._db):
                return code
            if bit is not None:
                owner = self._owner_bit.get((start, bit), -1)
                owners = np.array([owner])
            else:
                owners = self._owner_byte[start : start + len(data)]
            self._dirty.update(int(i) for i in np.unique(owners[owners >= 0]))
        return code

    async def start(self, host: str, port: int) -> int:
        """Start listening (from the plant's loop); returns the bound port."""
        quiet_snap7()
        server = S7Server(self._on_write)
        for (area, index), memory in self._memory.items():
            server.register_area(_SRV_AREA[area], index, memory)
        bind = "127.0.0.1" if host in ("", "localhost") else host
        try:
            # Always an explicit interface: snap7's default is 0.0.0.0, port 102.
            server.start_to(bind, port)
        except Exception as exc:  # snap7 raises its own error types for bind failures
            raise ConfigurationError(
                f"the simulated S7 server cannot listen on {bind}:{port}: {exc}"
            ) from None
        self._server = server
        bound = server.bound_port
        self.url = f"s7://{'127.0.0.1' if bind == '0.0.0.0' else bind}:{bound}"
        return bound

    async def stop(self) -> None:
        """Stop listening and drop the open connections."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
