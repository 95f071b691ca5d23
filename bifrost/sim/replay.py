"""Replay a recording as a simulated device: ``bf.sim.replay("run.parquet").serve(modbus=0)``.

A :class:`Replay` is a :class:`~bifrost.sim.Plant` whose values come from a saved
recording instead of the process model: it serves every recorded tag over Modbus TCP, S7
and OPC UA with the recording's timing (``speed`` times real time, looping by default), and
can play faults (:mod:`bifrost.sim.faults`): dropouts, frozen values, noise, a slow device.

Tag map (``replay.tags(protocol)``, the same names as the recording):

- Modbus: numeric tags in holding registers from 0 on, in recording order, each with the
  recorded type (``float32`` two registers, ``float64`` four, ...; 8-bit integers as 16-bit
  ones) in big-endian order; strings as ``string[n]`` (``n`` the longest recorded value);
  bools as discrete inputs from 0 on (at most 16). Waveform (array) tags are OPC UA only.
  At most 900 holding registers are used.
- S7: one data block, ``DB100``, just large enough: numeric tags in recording order with
  their S7 type (``REAL`` for float32, ``LREAL`` float64, ``SINT``/``USINT``, ``INT``/
  ``WORD``, ``DINT``/``DWORD``, ``LINT``/``ULINT``), words on even offsets; bools as bits
  (eight to a byte); strings as ``STRING[n]`` (``n`` the longest recorded value, at most
  254). Waveform (array) tags are OPC UA only. Nothing else is served over S7 (no
  merkers, inputs or outputs) and nothing is writable.
- OPC UA: one variable per tag, ``ns=2;s=Replay.<name>``, browse path
  ``/Objects/2:Replay/2:<name>``, of the recorded type (arrays as Double arrays).

What a row with bad quality becomes: over OPC UA its variables have the status
``BadNoCommunication`` and no value; Modbus has no per-value status, so there it keeps
the last good value (0 before the first one), and so does S7.

Position: a replay shows, at each moment, the last recorded row at or before its
position in the recording (sample and hold). With ``realtime=True`` the position runs
from the first :meth:`Replay.serve` on at ``speed`` times real time from ``start``; with
``loop=True`` it wraps after the last row plus one interval. With ``realtime=False`` the
position stands still until :meth:`Replay.seek` or :meth:`Replay.step` (tests).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bifrost.exceptions import ConfigurationError, value_repr
from bifrost.model import Quality, Tag
from bifrost.sim.faultproxy import FaultProxy
from bifrost.sim.faults import Dropout, Fault, Frozen, Noise, Slow, check_faults
from bifrost.sim.plant import Plant
from bifrost.tags import TagTable

if TYPE_CHECKING:
    from bifrost.recording.session import Recording

__all__ = ["Replay", "replay"]

PROTOCOLS = ("modbus", "s7", "opcua")
"""Protocols a replay serves."""

_MODBUS_REGISTERS = 900  # the plant's Modbus server keeps hr 900 on for its scratch area
_MODBUS_BITS = 16
_MAX_STRING = 250
_REGISTERS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
_REGISTERS.update({"int64": 4, "uint64": 4, "float64": 4})
_WIDENED = {"int8": "int16", "uint8": "uint16"}
_OPCUA_TYPES = {
    "bool": "Boolean",
    "int8": "SByte",
    "uint8": "Byte",
    "int16": "Int16",
    "uint16": "UInt16",
    "int32": "Int32",
    "uint32": "UInt32",
    "int64": "Int64",
    "uint64": "UInt64",
    "float32": "Float",
    "float64": "Double",
    "string": "String",
    "array": "Double",
}
_FLOATS = ("float32", "float64")
S7_DB = 100
"""The data block a replay serves its tags in over S7."""
_S7_TYPES = {"int8": "SINT", "uint8": "USINT", "int16": "INT", "uint16": "WORD"}
_S7_TYPES.update({"int32": "DINT", "uint32": "DWORD", "int64": "LINT", "uint64": "ULINT"})
_S7_TYPES.update({"float32": "REAL", "float64": "LREAL"})
_S7_SIZES = {"SINT": 1, "USINT": 1, "INT": 2, "WORD": 2, "DINT": 4, "DWORD": 4, "REAL": 4}
_S7_SIZES.update({"LINT": 8, "ULINT": 8, "LREAL": 8})
_S7_WIDTH = {1: "B", 2: "W", 4: "D", 8: "D"}  # 8-byte types are written on D
_S7_MAX_STRING = 254
_S7_MAX_BYTES = 65535
# step() lands this far after a row's time, so float rounding of the wrapped position can
# not put it on the row before.
_AFTER_ROW = 1e-6
_OPCUA_FOLDER = "Replay"  # bifrost.protocols.opcua.replay_server.REPLAY_FOLDER (no asyncua here)


@dataclass(frozen=True, slots=True)
class _Column:
    """One recorded tag: its kind, values, and the row of its last good value per row."""

    tag: Tag
    kind: str  # a bifrost dtype, "string" or "array"
    values: npt.NDArray[Any]
    good: npt.NDArray[np.bool_]
    last_good: npt.NDArray[np.intp]  # -1 before the first good row

    def value(self, row: int) -> Any:
        """The recorded value of ``row`` as a Python value (None: no good value)."""
        if not self.good[row]:
            return None
        return _python(self.values[row], self.kind)

    def held(self, row: int) -> Any:
        """The last good value at or before ``row`` (what a register keeps showing)."""
        last = int(self.last_good[row])
        if last < 0:
            return "" if self.kind == "string" else False if self.kind == "bool" else 0
        return _python(self.values[last], self.kind)


def _python(value: Any, kind: str) -> Any:
    if kind == "bool":
        return bool(value)
    if kind in _FLOATS:
        return float(value)
    if kind == "string":
        return str(value)
    if kind == "array":
        return np.asarray(value, dtype=np.float64)
    return int(value)


def _kind(dtype: str, column: npt.NDArray[Any], name: str) -> str:
    if dtype.startswith("string"):
        return "string"
    if dtype != "object":
        if dtype not in _OPCUA_TYPES:
            raise ConfigurationError(f"the replay cannot serve tag {name!r} of type {dtype!r}")
        return dtype
    sample = next((v for v in column if v is not None), "")
    if isinstance(sample, str):
        return "string"
    if isinstance(sample, np.ndarray | list | tuple):
        return "array"
    raise ConfigurationError(
        f"the replay cannot serve tag {name!r}: its values are {type(sample).__name__}"
    )


class _Feed:
    """A protocol's server, fed with that protocol's view of the replay's current row.

    It sits behind a fault proxy when the replay has dropouts or latency.
    """

    def __init__(self, inner: Any, protocol: str, replay: Replay, proxied: bool) -> None:
        self._inner = inner
        self._protocol = protocol
        self._replay = replay
        self._proxy = FaultProxy(replay.transport_faults) if proxied else None
        self.security = None
        self.url = ""

    def publish(self, snapshot: Mapping[str, Any], aux: npt.NDArray[np.uint16]) -> None:
        del snapshot  # the replay's own row, in this protocol's terms
        self._inner.publish(self._replay.row_values(self._protocol), aux)

    def collect_writes(self) -> dict[str, Any]:
        return {}

    async def start(self, host: str, port: int) -> int:
        if self._proxy is None:
            bound: int = await self._inner.start(host, port)
            self.url = self._inner.url
            return bound
        inner = await self._inner.start(host, 0)
        bound = await self._proxy.start(host, port, (host, inner))
        self.url = self._inner.url.replace(f":{inner}", f":{bound}", 1)
        return bound

    async def stop(self) -> None:
        if self._proxy is not None:
            await self._proxy.stop()
        await self._inner.stop()


class Replay(Plant):
    """A saved recording served as a device (see the module docstring).

    Parameters
    ----------
    source
        A :class:`~bifrost.recording.session.Recording`, or the path of a saved one
        (``.parquet``, ``.zarr``, ``.nc``, ``.csv``: whatever :func:`bifrost.open_recording` reads).
    speed
        Replay time per real second (2.0: twice as fast).
    loop
        Start again after the last row (else the last row stays).
    faults
        :class:`~bifrost.sim.faults.Dropout`, :class:`~bifrost.sim.faults.Frozen`,
        :class:`~bifrost.sim.faults.Noise`, :class:`~bifrost.sim.faults.Slow`.
    realtime
        False: the position moves only with :meth:`seek` and :meth:`step`.
    start
        Position (seconds into the recording) the replay starts from.
    """

    def __init__(
        self,
        source: Recording | str | os.PathLike[str],
        *,
        speed: float = 1.0,
        loop: bool = True,
        faults: Iterable[Fault] | Fault | None = None,
        realtime: bool = True,
        start: float = 0.0,
    ) -> None:
        recording = _load(source)
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            raise ConfigurationError(f"speed must be a number > 0, got {value_repr(speed)}")
        if not (math.isfinite(speed) and speed > 0):
            raise ConfigurationError(f"speed must be a finite number > 0, got {speed!r}")
        if isinstance(start, bool) or not isinstance(start, int | float) or not start >= 0:
            raise ConfigurationError(f"start must be >= 0 seconds, got {value_repr(start)}")
        times, columns, quality = recording.buffer.arrays()
        if len(times) == 0:
            raise ConfigurationError("the recording has no rows to replay")
        super().__init__(realtime=False, aux=0)
        self.recording = recording
        self.speed = float(speed)
        self.loop = bool(loop)
        self.faults = check_faults(faults, recording.names)
        self._columns = self._make_columns(recording, columns, quality)
        self._offsets = (times - times[0]).astype(np.float64) / 1e9
        gaps = np.diff(self._offsets)
        interval = recording.interval_s or (float(np.median(gaps)) if len(gaps) else 1.0)
        self.interval = float(interval) if interval and interval > 0 else 1.0
        self.duration = float(self._offsets[-1]) + self.interval
        self._start = float(start)
        self._manual = float(start)
        self._origin: float | None = None
        self._tick_s = max(0.005, min(0.05, self.interval / self.speed / 2))
        self._modbus, self._opcua = self._layout()
        self._s7, self._s7_size = self._s7_layout()
        self.realtime = bool(realtime)
        if self.realtime:
            self._start_thread()

    # -- the recording --------------------------------------------------------------------
    @staticmethod
    def _make_columns(
        recording: Recording, columns: list[npt.NDArray[Any]], quality: npt.NDArray[np.uint8]
    ) -> list[_Column]:
        made = []
        rows = np.arange(len(quality), dtype=np.intp)
        for j, (tag, dtype) in enumerate(zip(recording.tags, recording.dtypes, strict=True)):
            good = quality[:, j] < Quality.BAD
            last_good = np.maximum.accumulate(np.where(good, rows, -1))
            values = np.array(columns[j], copy=True)
            made.append(_Column(tag, _kind(dtype, values, tag.name), values, good, last_good))
        return made

    def _layout(self) -> tuple[TagTable, TagTable]:
        register, bit = 0, 0
        modbus: list[Tag] = []
        for column in self._columns:
            tag, kind = column.tag, column.kind
            if kind == "array":
                continue
            if kind == "bool":
                if bit >= _MODBUS_BITS:
                    raise ConfigurationError(
                        f"the replay serves at most {_MODBUS_BITS} bool tags over Modbus; "
                        f"{tag.name!r} is one more"
                    )
                address = f"di:{bit}"
                bit += 1
            elif kind == "string":
                longest = max((len(str(v)) for v in column.values if v is not None), default=1)
                length = min(_MAX_STRING, max(2, longest + longest % 2))
                address, count = f"hr:{register}:string[{length}]", length // 2
            else:
                dtype = _WIDENED.get(kind, kind)
                address, count = f"hr:{register}:{dtype}", _REGISTERS[dtype]
            if kind != "bool":
                if register + count > _MODBUS_REGISTERS:
                    raise ConfigurationError(
                        f"the recording's tags need more than the {_MODBUS_REGISTERS} holding "
                        f"registers a replay serves (at {tag.name!r}); replay fewer tags"
                    )
                register += count
            modbus.append(Tag(tag.name, address, unit=tag.unit, description=tag.description))
        opcua = [
            Tag(
                c.tag.name,
                f"ns=2;s={_OPCUA_FOLDER}.{c.tag.name}",
                unit=c.tag.unit,
                description=c.tag.description,
            )
            for c in self._columns
        ]
        return TagTable(modbus), TagTable(opcua)

    def _s7_layout(self) -> tuple[TagTable, int]:
        """The S7 tag table in DB100 and the data block's size in bytes."""
        offset, bit_byte, bit = 0, -1, 8
        s7: list[Tag] = []
        for column in self._columns:
            tag, kind = column.tag, column.kind
            if kind == "array":
                continue
            if kind == "bool":
                if bit == 8:
                    bit_byte, bit, offset = offset, 0, offset + 1
                address = f"DB{S7_DB}.DBX{bit_byte}.{bit}"
                bit += 1
            else:
                if kind == "string":
                    longest = max((len(str(v)) for v in column.values if v is not None), default=1)
                    length = min(_S7_MAX_STRING, max(1, longest))
                    width, s7type, size = "B", f"STRING[{length}]", length + 2
                else:
                    s7type = _S7_TYPES[kind]
                    size = _S7_SIZES[s7type]
                    width = _S7_WIDTH[size]
                    offset += offset % 2 if size > 1 else 0  # words on even bytes, as S7 does
                address = f"DB{S7_DB}.DB{width}{offset}:{s7type}"
                offset += size
                bit = 8  # a bool after this value starts a byte of its own
                if offset > _S7_MAX_BYTES:
                    raise ConfigurationError(
                        f"the recording's tags need more than the {_S7_MAX_BYTES} bytes of an "
                        f"S7 data block (at {tag.name!r}); replay fewer tags"
                    )
            s7.append(Tag(tag.name, address, unit=tag.unit, description=tag.description))
        return TagTable(s7), max(offset, 1)

    # -- position -------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self.elapsed_at(time.monotonic())

    def elapsed_at(self, monotonic: float) -> float:
        """Replay seconds at the monotonic clock's ``monotonic`` (its position before wrapping).

        A realtime replay's clock starts at the first :meth:`serve`, at ``start``.
        """
        if not self.realtime:
            return self._manual
        if self._origin is None:
            return self._start
        return (monotonic - self._origin) * self.speed + self._start

    def position_of(self, elapsed: float) -> float:
        """Where in the recording (seconds from its first row) ``elapsed`` replay seconds are."""
        if self.loop:
            return elapsed % self.duration
        return min(elapsed, float(self._offsets[-1]))

    def row_of(self, position: float) -> int:
        """The row shown at ``position``: the last one at or before it."""
        return max(0, int(np.searchsorted(self._offsets, position, side="right")) - 1)

    @property
    def position(self) -> float:
        """Seconds into the recording of what is served now."""
        return self.position_of(self._elapsed())

    @property
    def row(self) -> int:
        """Index of the recorded row served now."""
        return self.row_of(self.position)

    @property
    def loops(self) -> int:
        """Times the replay has wrapped around."""
        return int(self._elapsed() // self.duration) if self.loop else 0

    @property
    def time(self) -> float:
        """Replay seconds since the start (``speed`` times real time when realtime)."""
        return self._elapsed()

    @property
    def steps(self) -> int:
        """Index of the recorded row served now."""
        return self.row

    def seek(self, position: float) -> None:
        """Show the recording at ``position`` seconds (a ``realtime=False`` replay)."""
        if self.realtime:
            raise ConfigurationError("seek() is for replay(..., realtime=False); this one runs")
        if isinstance(position, bool) or not isinstance(position, int | float) or position < 0:
            raise ConfigurationError(f"position must be >= 0 seconds, got {value_repr(position)}")
        with self._lock:
            self._manual = float(position)
            self._publish()

    def _advance(self, n: int) -> None:
        # step(n): n recorded rows on (seek to the row n after the current one).
        with self._lock:
            row = self.row + n
            if self.loop:
                self._manual = (self._elapsed() // self.duration) * self.duration
                self._manual += float(self._offsets[row % len(self._offsets)])
                self._manual += self.duration * (row // len(self._offsets))
            else:
                self._manual = float(self._offsets[min(row, len(self._offsets) - 1)])
            self._manual += _AFTER_ROW
            self._publish()

    # -- values ---------------------------------------------------------------------------
    def values(self, position: float | None = None, *, faults: bool = True) -> dict[str, Any]:
        """Each tag's value at ``position`` (now: None), as OPC UA serves it.

        ``None`` where the recording had no good value; ``faults=False`` gives the
        recorded values themselves (no frozen values or noise).
        """
        where = self.position if position is None else self.position_of(position)
        row = self.row_of(where)
        active = [f for f in self.faults if f.active(where)] if faults else []
        frozen = [f for f in active if isinstance(f, Frozen)]
        noise = [f for f in active if isinstance(f, Noise)]
        result: dict[str, Any] = {}
        for j, column in enumerate(self._columns):
            name = column.tag.name
            source = row
            for stuck in frozen:
                if stuck.covers(name):
                    source = min(source, self.row_of(stuck.start))
            value = column.value(source)
            if value is not None and column.kind in _FLOATS:
                for fault in noise:
                    if fault.covers(name):
                        rng = np.random.default_rng([fault.seed, source, j])
                        value += float(rng.uniform(-fault.amplitude, fault.amplitude))
                if column.kind == "float32":
                    value = float(np.float32(value))
            result[name] = value
        return result

    def snapshot(self) -> dict[str, Any]:
        """The values served now (over OPC UA; None where the recording had none)."""
        with self._lock:
            return self.values()

    def row_values(self, protocol: str) -> dict[str, Any]:
        """The current row as ``protocol``'s server shows it (Modbus, S7: held, never None)."""
        current = self.values()
        if protocol == "opcua":
            return current
        row = self.row
        return {
            c.tag.name: current[c.tag.name] if current[c.tag.name] is not None else c.held(row)
            for c in self._columns
            if c.kind != "array"
        }

    def transport_faults(self) -> tuple[bool, float]:
        """(a dropout is active, the added reply latency) at the current position."""
        where = self.position
        active = [f for f in self.faults if f.active(where)]
        dropout = any(isinstance(f, Dropout) for f in active)
        latency = sum(f.latency for f in active if isinstance(f, Slow))
        return dropout, latency

    # -- plant interface ------------------------------------------------------------------
    def tags(self, protocol: str = "modbus") -> TagTable:
        """The replay's tag table for ``protocol`` (the recording's tag names)."""
        if protocol == "modbus":
            return self._modbus
        if protocol == "opcua":
            return self._opcua
        if protocol == "s7":
            return self._s7
        raise ConfigurationError(
            f"a replay does not serve {protocol!r}; available: {', '.join(PROTOCOLS)}"
        )

    def aux_tags(self, n: int, dtype: str = "uint16") -> TagTable:
        """A replay has no auxiliary channels."""
        raise ConfigurationError("a replay has no auxiliary benchmark channels")

    def serve(
        self,
        *,
        host: str = "127.0.0.1",
        opcua_security: bool | int = False,
        opcua_aux: int = 0,
        **ports: int,
    ) -> dict[str, str]:
        """Start servers, e.g. ``serve(modbus=0, s7=0, opcua=0)`` (no arguments: all)."""
        if opcua_security or opcua_aux:
            raise ConfigurationError("a replay's OPC UA server has no security or aux options")
        for protocol in ports:
            self.tags(protocol)  # an unknown protocol fails before anything starts
        if not ports:
            ports = {p: 0 for p in PROTOCOLS if p not in self._urls}
        urls = self._serve(host, ports)
        with self._lock:
            if self._origin is None:
                self._origin = time.monotonic()
        return urls

    def _binding(self, protocol: str) -> Any:
        proxied = any(isinstance(f, Dropout | Slow) for f in self.faults)
        inner: Any
        if protocol == "modbus":
            from bifrost.protocols.modbus.server import ModbusBinding

            inner = ModbusBinding(self._modbus, self._lock, aux=0)
        elif protocol == "s7":
            from bifrost.protocols.s7.server import S7Binding

            inner = S7Binding(
                self._s7, self._lock, aux=0, db=S7_DB, db_size=self._s7_size, plant_areas=False
            )
        else:
            from bifrost._extras import require

            require("asyncua", "A replay's OPC UA server")
            from bifrost.protocols.opcua.replay_server import ReplayOpcUaBinding, ReplayVariable

            variables = [
                ReplayVariable(
                    c.tag.name, _OPCUA_TYPES[c.kind], c.tag.description, c.kind == "array"
                )
                for c in self._columns
            ]
            inner = ReplayOpcUaBinding(variables, self._lock)
        return _Feed(inner, protocol, self, proxied)

    def _publish(self) -> None:
        # With the lock held; each feed asks for its protocol's view of the row.
        empty = np.zeros(0, dtype=np.uint16)
        for binding in self._bindings.values():
            binding.publish({}, empty)

    async def _tick(self) -> None:
        """Publish whenever the row (or a fault's effect on it) changes."""
        shown: tuple[Any, ...] | None = None
        while True:
            with self._lock:
                where = self.position
                key = (self.row_of(where), *(f.active(where) for f in self.faults))
                if key != shown:
                    shown = key
                    self._publish()
            await asyncio.sleep(self._tick_s)

    def __repr__(self) -> str:
        mode = f"x{self.speed:g}" if self.realtime else "stepped"
        state = "closed" if self.closed else ", ".join(self._urls.values()) or "not served"
        return (
            f"<Replay {len(self._columns)} tags, {len(self._offsets)} rows, "
            f"{self.duration:g} s, {mode}, at {self.position:.2f} s, {state}>"
        )


def _load(source: Any) -> Recording:
    from bifrost.recording.session import Recording

    if isinstance(source, Recording):
        return source
    if isinstance(source, str | os.PathLike):
        from bifrost.recording.store import open_recording

        return open_recording(source)
    raise ConfigurationError(
        f"replay() takes a Recording or the path of a saved one, got {value_repr(source)}"
    )


def replay(
    source: Recording | str | os.PathLike[str],
    *,
    speed: float = 1.0,
    loop: bool = True,
    faults: Iterable[Fault] | Fault | None = None,
    realtime: bool = True,
    start: float = 0.0,
) -> Replay:
    """Serve a saved recording as a device; see :class:`Replay`.

    >>> rp = bf.sim.replay("run.parquet", speed=2.0)      # doctest: +SKIP
    >>> urls = rp.serve(modbus=0, opcua=0)                 # doctest: +SKIP
    >>> plc = rp.connect("opcua")                          # doctest: +SKIP
    """
    return Replay(source, speed=speed, loop=loop, faults=faults, realtime=realtime, start=start)
