"""Glue between the simulated plant and a pymodbus TCP server.

The binding keeps its own register image, one NumPy array per Modbus table. After every
batch of steps the plant calls :meth:`ModbusBinding.publish`, which encodes the snapshot
with :mod:`bifrost.protocols.modbus.codec` into that image: one vectorised write per
(table, type, byte order) group of tags and one for the auxiliary channels. The
pymodbus datastore (its ``SimDevice`` registers) is refreshed from the image by the
device's ``action`` hook when a request arrives and the image has changed since: one
slice assignment per table, so a request always sees the state of one step and an idle
server costs nothing.

Client writes also pass through the hook: a write that touches anything but writable
tags and the scratch area is refused with exception 2 (illegal data address); an accepted
one is copied into the image and its tags are marked, so that the plant decodes them
(again with :mod:`bifrost.protocols.modbus.codec`) and feeds them to the model before its next step.

The plant's lock serialises all of this: ``publish`` and ``collect_writes`` are called with
it held, the hook takes it itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from bifrost._accepts import close_listener
from bifrost.exceptions import ConfigurationError
from bifrost.model import ByteOrder, DataType
from bifrost.protocols.modbus.address import ModbusAddress, parse_modbus_address
from bifrost.protocols.modbus.codec import (
    decode_registers,
    decode_strings,
    encode_registers,
    encode_string,
)
from bifrost.sim.tagmap import (
    MODBUS_AUX_START,
    MODBUS_BIT_SIZE,
    MODBUS_IR_SIZE,
    MODBUS_SCRATCH_COUNT,
    MODBUS_SCRATCH_START,
)
from bifrost.tags import TagTable

__all__ = ["ModbusBinding"]

_TABLE_OF_FC = {1: "co", 2: "di", 3: "hr", 4: "ir", 5: "co", 6: "hr", 15: "co", 16: "hr"}
_TABLE_OF_FC.update({22: "hr", 23: "hr"})
_BIT_TABLES = ("co", "di")
_ORDER = ("co", "di", "hr", "ir")  # the order of SimDevice's non-shared block tuple


def _check_holes(
    holes: Mapping[str, Sequence[tuple[int, int]]],
) -> dict[str, list[tuple[int, int]]]:
    checked: dict[str, list[tuple[int, int]]] = {}
    for table, ranges in holes.items():
        if table not in ("hr", "ir"):
            raise ConfigurationError(f"holes: {table!r} is not a register table (hr, ir)")
        for item in ranges:
            first, last = item
            if not 0 <= first <= last <= 65535:
                raise ConfigurationError(f"holes: {table} {item!r} is not a range of addresses")
            checked.setdefault(table, []).append((int(first), int(last)))
    return checked


def quiet_pymodbus() -> None:
    """Keep pymodbus' INFO/DEBUG chatter out of notebooks unless asked for."""
    logger = logging.getLogger("pymodbus")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class _Group:
    """Numeric tags of one table sharing type and byte order, encoded in one go."""

    table: str
    dtype: DataType
    order: ByteOrder
    names: tuple[str, ...]
    scales: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.float64]
    index: npt.NDArray[np.intp]  # (n, registers per value): where the registers go


class ModbusBinding:
    """The plant's Modbus server: image, encoder, write tracking and pymodbus lifecycle.

    Parameters
    ----------
    tags
        The plant's Modbus tag table.
    lock
        The plant's lock, held around publish/collect and taken by the request hook.
    aux
        Number of auxiliary holding registers from :data:`MODBUS_AUX_START` on.
    holes
        Register ranges to refuse as a device without them would, ``{"hr": [(first,
        last), ...]}`` (inclusive; ``hr`` and ``ir``): any request touching one gets
        exception 2. For trying :meth:`bifrost.Connection.scan` on the plant.
    max_batch
        Largest register read accepted (default 125); larger ones get exception 3.
    """

    protocol = "modbus"

    def __init__(
        self,
        tags: TagTable,
        lock: threading.RLock,
        *,
        aux: int,
        holes: Mapping[str, Sequence[tuple[int, int]]] | None = None,
        max_batch: int | None = None,
    ) -> None:
        self._lock = lock
        self._holes = _check_holes(holes or {})
        if max_batch is not None and (
            isinstance(max_batch, bool) or not isinstance(max_batch, int) or not 0 < max_batch < 126
        ):
            raise ConfigurationError(f"max_batch={max_batch!r} must be 1-125 registers")
        self._max_batch = max_batch or 125
        self._aux = aux
        self._tags = tags
        sizes = {
            "hr": MODBUS_AUX_START + aux,
            "ir": MODBUS_IR_SIZE,
            "co": MODBUS_BIT_SIZE,
            "di": MODBUS_BIT_SIZE,
        }
        self._sizes = sizes
        self._regs: dict[str, npt.NDArray[np.uint16]] = {
            t: np.zeros(sizes[t], dtype=np.uint16) for t in ("hr", "ir")
        }
        self._bits: dict[str, npt.NDArray[np.bool_]] = {
            t: np.zeros(sizes[t], dtype=np.bool_) for t in _BIT_TABLES
        }
        self._writable = {t: np.zeros(n, dtype=np.bool_) for t, n in sizes.items()}
        self._owner = {t: np.full(n, -1, dtype=np.intp) for t, n in sizes.items()}
        self._writable["hr"][MODBUS_SCRATCH_START : MODBUS_SCRATCH_START + MODBUS_SCRATCH_COUNT] = (
            True
        )
        self._addresses: list[tuple[str, ModbusAddress, float, float]] = []
        grouped: dict[tuple[str, DataType, ByteOrder], list[int]] = {}
        self._strings: list[int] = []
        self._bit_tags: dict[str, list[int]] = {t: [] for t in _BIT_TABLES}
        for i, tag in enumerate(tags):
            addr = parse_modbus_address(tag.address)
            if addr.end > sizes[addr.table] or (
                addr.table == "hr" and addr.end > MODBUS_SCRATCH_START
            ):
                raise ConfigurationError(f"tag {tag.name!r}: {addr} is outside the plant's map")
            if (self._owner[addr.table][addr.offset : addr.end] >= 0).any():
                raise ConfigurationError(f"tag {tag.name!r}: {addr} overlaps another tag")
            self._owner[addr.table][addr.offset : addr.end] = i
            self._writable[addr.table][addr.offset : addr.end] = tag.writable
            self._addresses.append((tag.name, addr, tag.scale, tag.offset))
            if addr.is_bit:
                self._bit_tags[addr.table].append(i)
            elif addr.dtype is DataType.STRING:
                self._strings.append(i)
            else:
                grouped.setdefault((addr.table, addr.dtype, addr.order), []).append(i)
        self._groups = [self._make_group(key, members) for key, members in grouped.items()]
        self._bit_index = {
            t: np.array([self._addresses[i][1].offset for i in m], dtype=np.intp)
            for t, m in self._bit_tags.items()
        }
        self._dirty: set[int] = set()
        self._generation = 0
        self._synced = dict.fromkeys(_ORDER, -1)
        self._server: ModbusTcpServer | None = None
        self.url = ""

    def _make_group(self, key: tuple[str, DataType, ByteOrder], members: list[int]) -> _Group:
        table, dtype, order = key
        addrs = [self._addresses[i][1] for i in members]
        width = addrs[0].count
        starts = np.array([a.offset for a in addrs], dtype=np.intp)
        return _Group(
            table=table,
            dtype=dtype,
            order=order,
            names=tuple(self._addresses[i][0] for i in members),
            scales=np.array([self._addresses[i][2] for i in members], dtype=np.float64),
            offsets=np.array([self._addresses[i][3] for i in members], dtype=np.float64),
            index=starts[:, None] + np.arange(width, dtype=np.intp)[None, :],
        )

    # -- plant side (called with the plant's lock held) -----------------------------------
    def publish(self, snapshot: Mapping[str, Any], aux: npt.NDArray[np.uint16]) -> None:
        """Encode a snapshot (and the auxiliary channels) into the register image."""
        for g in self._groups:
            values = np.array([snapshot[name] for name in g.names], dtype=np.float64)
            raw = (values - g.offsets) / g.scales
            if g.dtype.is_integer:
                low, high = g.dtype.bounds()
                raw = np.clip(np.rint(raw), low, high)
            self._regs[g.table][g.index] = encode_registers(raw, g.dtype, g.order)
        for i in self._strings:
            name, addr, _, _ = self._addresses[i]
            regs = encode_string(str(snapshot[name])[: addr.length], addr.length, addr.order)
            self._regs[addr.table][addr.offset : addr.end] = regs
        for table, members in self._bit_tags.items():
            if members:
                names = [self._addresses[i][0] for i in members]
                self._bits[table][self._bit_index[table]] = [bool(snapshot[n]) for n in names]
        self._regs["hr"][MODBUS_AUX_START : MODBUS_AUX_START + self._aux] = aux
        self._generation += 1

    def collect_writes(self) -> dict[str, Any]:
        """Values of the tags clients wrote since the last call, decoded from the image."""
        writes: dict[str, Any] = {}
        for i in sorted(self._dirty):
            name, addr, scale, offset = self._addresses[i]
            if addr.is_bit:
                writes[name] = bool(self._bits[addr.table][addr.offset])
                continue
            image = self._regs[addr.table]
            starts = np.array([addr.offset], dtype=np.intp)
            if addr.dtype is DataType.STRING:
                writes[name] = decode_strings(image, starts, addr.length, addr.order)[0]
                continue
            raw = decode_registers(image, starts, addr.dtype, addr.order)[0].item()
            writes[name] = raw * scale + offset if (scale, offset) != (1.0, 0.0) else raw
        self._dirty.clear()
        return writes

    # -- server side (runs on the plant's event loop) -------------------------------------
    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """SimDevice hook, called before pymodbus serves a request from ``registers``."""
        table = _TABLE_OF_FC.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if table not in _BIT_TABLES:
            # The device the plant plays may be a smaller one (see holes, max_batch).
            if set_values is None and count > self._max_batch:
                return ExcCodes.ILLEGAL_VALUE
            last = address + count - 1
            if any(first <= last and address <= end for first, end in self._holes.get(table, ())):
                return ExcCodes.ILLEGAL_ADDRESS
        with self._lock:
            if self._synced[table] != self._generation:
                self._sync(table, start_address, registers)
            if set_values is not None:
                end = address + len(set_values)
                if end > self._sizes[table] or not self._writable[table][address:end].all():
                    return ExcCodes.ILLEGAL_ADDRESS
                if table in _BIT_TABLES:
                    self._bits[table][address:end] = [bool(v) for v in set_values]
                else:
                    self._regs[table][address:end] = set_values
                owners = self._owner[table][address:end]
                self._dirty.update(int(i) for i in np.unique(owners[owners >= 0]))
        return None

    def _sync(self, table: str, start_address: int, registers: list[int]) -> None:
        """Copy one table of the image into pymodbus' register list (one slice write)."""
        if table in _BIT_TABLES:
            bits = self._bits[table]
            padded = np.zeros(-(-len(bits) // 16) * 16, dtype=np.bool_)
            padded[: len(bits)] = bits
            words = np.packbits(padded, bitorder="little").view("<u2")
        else:
            words = self._regs[table]
        # In the non-shared layout a bit block starts at register (first bit // 16) and
        # every block starts at our address 0, so start_address is 0; keep it general.
        offset = -start_address
        registers[offset : offset + len(words)] = words.tolist()
        self._synced[table] = self._generation

    def _device(self) -> SimDevice:
        def regs(n: int) -> list[SimData]:
            return [SimData(0, count=n, values=0, datatype=SimType.REGISTERS)]

        def bits(n: int) -> list[SimData]:
            return [SimData(0, count=n, values=False, datatype=SimType.BITS)]

        s = self._sizes
        # id=0 is pymodbus' catch-all: every unit id gets the same plant.
        return SimDevice(
            id=0,
            simdata=(bits(s["co"]), bits(s["di"]), regs(s["hr"]), regs(s["ir"])),
            action=self._action,
        )

    async def start(self, host: str, port: int) -> int:
        """Start listening (in the plant's running loop); returns the bound port."""
        quiet_pymodbus()
        server = ModbusTcpServer(self._device(), address=(host, port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise ConfigurationError(
                f"the simulated Modbus server cannot listen on {host}:{port}: {exc}"
            ) from None
        self._server = server
        sockets = getattr(server.transport, "sockets", None) or ()
        bound = int(sockets[0].getsockname()[1]) if sockets else port
        self.url = f"modbus://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{bound}"
        return bound

    async def stop(self) -> None:
        """Stop listening and drop the open connections."""
        server, self._server = self._server, None
        if server is not None:
            # Accepting stops first, so that shutdown closes the late ones with the rest.
            await close_listener(server.transport)
            await server.shutdown()  # type: ignore[no-untyped-call]
            await asyncio.sleep(0)  # let the transports run their close callbacks
