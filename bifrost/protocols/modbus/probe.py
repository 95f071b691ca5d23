"""Raw Modbus registers decoded under every type and byte/word order (DecodeProbe's core).

What a commissioning engineer does with a register map that does not say how values are
encoded: read a window of registers, decode a value starting at every register under
every type and order, and keep the decodings that give the value shown on the HMI. The
Jupyter widget :class:`bifrost.jupyter.DecodeProbe` and ``bifrost probe`` both use this
module; it does no I/O except :func:`read_window`, through a connection.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost.exceptions import ConfigurationError, ConnectionError, ProtocolError
from bifrost.model import ByteOrder, DataType
from bifrost.protocols.modbus.address import parse_modbus_address
from bifrost.protocols.modbus.codec import decode_registers

__all__ = [
    "MAX_PROBE",
    "Match",
    "Tolerance",
    "Window",
    "decode_window",
    "is_exact",
    "plausible",
    "probe_address",
    "rank_matches",
    "read_window",
    "typed_decimals",
    "window",
]

_ORDERS_16 = (ByteOrder.ABCD, ByteOrder.BADC)
_ORDERS_32 = (ByteOrder.ABCD, ByteOrder.CDAB, ByteOrder.BADC, ByteOrder.DCBA)
_PROBE_TYPES: tuple[tuple[DataType, tuple[ByteOrder, ...]], ...] = (
    (DataType.UINT16, _ORDERS_16),
    (DataType.INT16, _ORDERS_16),
    (DataType.FLOAT32, _ORDERS_32),
    (DataType.INT32, _ORDERS_32),
    (DataType.UINT32, _ORDERS_32),
    (DataType.FLOAT64, _ORDERS_32),
    (DataType.INT64, _ORDERS_32),
    (DataType.UINT64, _ORDERS_32),
)
_SCALES = (1.0, 0.1, 0.01, 0.001)
MAX_PROBE = 120  # registers; one Modbus read carries at most 125


# A 64-bit count reaches its top register after 2**48 events; decoded garbage (two floats
# or a float and its neighbour read as one integer) almost always has it set.
_INT64_PLAUSIBLE = 2**48
_FLOAT_MIN, _FLOAT_MAX = 1e-4, 1e9  # magnitudes of real measurements, zero apart


def plausible(values: npt.NDArray[Any], dtype: DataType) -> npt.NDArray[np.bool_]:
    """Whether each decoded value looks like a real measurement.

    Floats: finite, zero or a normal number between 1e-4 and 1e9 in magnitude (so never
    a denormal: the usual result of decoding an integer's registers as a float).
    64-bit integers: below 2**48 (2.8e14) in magnitude, so with a zero top register (two
    floats read as one integer give 4.6e18-like values). Narrower integers: any value.
    """
    if dtype.is_float:
        x = values.astype(np.float64)
        tiny = float(np.finfo(dtype.numpy_dtype).tiny)
        with np.errstate(invalid="ignore", over="ignore"):
            magnitude = np.abs(x)
            sane: npt.NDArray[np.bool_] = np.isfinite(x) & (
                (x == 0) | ((magnitude >= max(tiny, _FLOAT_MIN)) & (magnitude < _FLOAT_MAX))
            )
        return sane
    if dtype.size == 8:
        # Python ints: uint64 values above 2**63 do not fit int64 or float64 exactly.
        return np.array([abs(int(v)) < _INT64_PLAUSIBLE for v in values.tolist()], dtype=bool)
    return np.ones(len(values), dtype=bool)


@dataclass(frozen=True)
class Tolerance:
    """How far a decoded value may be from the expected one: absolute, or relative.

    Parse one with :meth:`parse`: ``"0.5%"`` is relative, ``"0.01"`` absolute.
    """

    amount: float
    relative: bool

    @classmethod
    def parse(cls, text: str | float) -> Tolerance:
        """``"0.5%"`` (or ``"0.5 %"``) -> 0.5 % of the expected value; ``"0.01"`` -> ±0.01.

        Raises
        ------
        ConfigurationError
            For a negative amount or text that is no number.
        """
        if isinstance(text, int | float):
            amount, relative = float(text), False
        else:
            stripped = text.strip().lstrip("±").strip()
            relative = stripped.endswith("%")
            try:
                amount = float(stripped.rstrip("%").strip())
            except ValueError:
                raise ConfigurationError(
                    f"tolerance {text!r} is no number: give e.g. 0.5% (relative) or 0.01"
                ) from None
            if relative:
                amount /= 100.0
        if not math.isfinite(amount) or amount < 0:
            raise ConfigurationError(f"tolerance must be a number >= 0, got {text!r}")
        return cls(amount, relative)

    def allowed(self, expected: float) -> float:
        """The largest distance from ``expected`` still within tolerance."""
        return abs(expected) * self.amount if self.relative else self.amount

    def __str__(self) -> str:
        return f"±{self.amount * 100:g} %" if self.relative else f"±{self.amount:g}"


class Match(NamedTuple):
    """A decoding that gives the expected value.

    Attributes
    ----------
    address
        The address to put in a tag table, e.g. ``ir:0:float32:CDAB``.
    value
        The decoded value times ``scale`` (in live mode: the latest reading).
    scale
        The tag's scale (1 for floats; 1, 0.1, 0.01 or 0.001 for integers).
    exact
        Whether it gives the value to every digit typed (floats: or the float32 nearest
        to it); otherwise it is within the tolerance only.
    """

    address: str
    value: float
    scale: float
    exact: bool


def typed_decimals(text: str) -> int | None:
    """Decimals of a typed number: ``"2.318"`` -> 3, ``"75"`` -> 0; None if no number."""
    try:
        exponent = decimal.Decimal(text.strip()).as_tuple().exponent
    except (decimal.InvalidOperation, ValueError):
        return None
    return max(0, -exponent) if isinstance(exponent, int) else None


def is_exact(value: float, expected: float, decimals: int | None, dtype: DataType) -> bool:
    """Whether ``value`` shows as ``expected`` at the precision it was typed with."""
    if decimals is not None and abs(value - expected) <= 0.5 * 10.0**-decimals * (1 + 1e-9):
        return True
    if dtype is DataType.FLOAT32:
        return bool(np.float32(value) == np.float32(expected))
    return value == expected


def probe_address(column: str, dtype: str, order: str) -> str:
    """A decoding's address: ``("hr:1", "float32", "CDAB")`` -> ``hr:1:float32:CDAB``."""
    suffix = "" if order == "ABCD" else f":{order}"
    return f"{column}:{dtype}{suffix}"


@dataclass
class _Candidate:
    """One decoding (row, column, scale) and how it compares with each sighting."""

    key: str
    column: str
    scale: float
    dtype: DataType
    exact: bool = True
    distance: float = 0.0  # worst distance over the sightings, in tolerances
    latest: float = math.nan


def rank_matches(
    readings: Sequence[tuple[float, pd.DataFrame]],
    sightings: Sequence[tuple[float, float, int | None]],
    tolerance: Tolerance,
    valid: dict[str, npt.NDArray[np.bool_]] | None = None,
    lag: float = 0.0,
) -> list[Match]:
    """Decodings that gave every sighted value, exact ones first.

    Parameters
    ----------
    readings
        ``(time, matrix)`` per reading, oldest first; each matrix as
        :attr:`DecodeProbe.matrix` (rows ``"type order"``, columns start addresses).
    sightings
        ``(time, value, decimals typed)``: the values seen on the HMI and when.
    tolerance
        How far a decoded value may be from a sighted one.
    valid
        Per row, which columns hold plausible values (default: all).
    lag
        Seconds between a reading and a sighting that still count as simultaneous (live
        mode: the value drifts while one reads the HMI and types it).

    Returns
    -------
    list of Match
        Exact matches first (closest first within each group), then those within the
        tolerance; unscaled before scaled, then fewer swaps.
    """
    if not readings or not sightings:
        return []
    candidates: dict[tuple[str, str, float], _Candidate] = {}
    first = True
    for when, expected, decimals in sightings:
        near = [m for t, m in readings if abs(t - when) <= lag] or [readings[-1][1]]
        allowed = max(tolerance.allowed(expected), 1e-12)
        found: dict[tuple[str, str, float], tuple[bool, float]] = {}
        for matrix in near:
            for key, row in matrix.iterrows():
                name = str(key)
                if name.startswith("ascii"):
                    continue
                dtype = DataType(name.split(maxsplit=1)[0])
                ok = valid.get(name) if valid is not None else None
                cells: list[Any] = list(row)
                for j, (column, value) in enumerate(zip(matrix.columns, cells, strict=True)):
                    if value is None or (ok is not None and not ok[j]):
                        continue
                    number = float(value)
                    if not math.isfinite(number):
                        continue
                    for scale in (1.0,) if dtype.is_float else _SCALES:
                        scaled = number * scale
                        gap = abs(scaled - expected)
                        if gap > allowed:
                            continue
                        exact = is_exact(scaled, expected, decimals, dtype)
                        cell = (name, str(column), scale)
                        best = found.get(cell)
                        if best is None or (exact, -gap) > (best[0], -best[1]):
                            found[cell] = (exact, gap)
        if first:
            for (name, column, scale), (exact, gap) in found.items():
                dtype = DataType(name.split()[0])
                candidates[(name, column, scale)] = _Candidate(
                    name, column, scale, dtype, exact, gap / allowed
                )
            first = False
        else:
            # A decoding must give every sighting: the trend is followed or it goes.
            for cell in list(candidates):
                if cell not in found:
                    del candidates[cell]
                    continue
                exact, gap = found[cell]
                candidate = candidates[cell]
                candidate.exact = candidate.exact and exact
                candidate.distance = max(candidate.distance, gap / allowed)
    latest = readings[-1][1]
    matches = []
    for candidate in candidates.values():
        current: Any = (
            latest.at[candidate.key, candidate.column] if candidate.column in latest else None
        )
        shown = float(current) * candidate.scale if current is not None else math.nan
        dtype_name, order = candidate.key.split()
        matches.append(
            (
                candidate,
                Match(
                    probe_address(candidate.column, dtype_name, order),
                    shown,
                    candidate.scale,
                    candidate.exact,
                ),
            )
        )
    matches.sort(
        key=lambda pair: (
            not pair[0].exact,
            round(pair[0].distance, 2),
            pair[0].scale != 1.0,
            pair[1].address.count(":") == 3,
            pair[1].address,
        )
    )
    return [m for _, m in matches]


def decode_window(
    registers: np.ma.MaskedArray[Any, Any], table: str, first: int
) -> tuple[pd.DataFrame, dict[str, npt.NDArray[np.bool_]]]:
    """Decode a value starting at every register, under every type and order.

    Returns the matrix (rows ``"type order"`` and ``"ascii AB"``, columns the start
    addresses, None where a value runs into a refused register or past the end) and, per
    row, which cells hold plausible values.
    """
    image = registers.filled(0).astype(np.uint16)
    missing = np.ma.getmaskarray(registers)
    n = len(image)
    columns = [f"{table}:{first + i}" for i in range(n)]
    rows: dict[str, list[Any]] = {}
    valid: dict[str, npt.NDArray[np.bool_]] = {}
    for dtype, orders in _PROBE_TYPES:
        width = max(1, dtype.size // 2)
        starts = np.arange(0, max(0, n - width + 1), dtype=np.intp)
        for order in orders:
            key = f"{dtype.value} {order.value}"
            out: list[Any] = [None] * n
            ok = np.zeros(n, dtype=bool)
            if len(starts):
                decoded = decode_registers(image, starts, dtype, order)
                hole = np.array([missing[s : s + width].any() for s in starts], dtype=bool)
                sane = plausible(decoded, dtype) & ~hole
                for s, value, bad in zip(starts, decoded.tolist(), hole, strict=True):
                    out[s] = None if bad else value
                ok[starts] = sane
            rows[key] = out
            valid[key] = ok
    text: list[Any] = []
    for i in range(n):
        if missing[i]:
            text.append(None)
            continue
        pair = int(image[i]).to_bytes(2, "big")
        text.append("".join(chr(b) if 32 <= b < 127 else "·" for b in pair))
    rows["ascii AB"] = text
    valid["ascii AB"] = np.array([t is not None for t in text], dtype=bool)
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns), valid


class Window(NamedTuple):
    """The registers to read around an address, and the type the user wrote, if any."""

    table: str
    first: int
    end: int
    dtype: DataType | None
    order: ByteOrder | None


def window(address: str, count: int) -> Window:
    """``count`` registers from ``address`` plus one before and one after.

    The extra registers catch the classic off-by-one of 0- and 1-based documentation.

    Raises
    ------
    AddressError
        ``address`` is no Modbus address.
    ConfigurationError
        A single-bit address (coil, discrete input) or a count outside 1-120.
    """
    text = address.strip()
    parsed = parse_modbus_address(text)
    if parsed.is_bit:
        raise ConfigurationError(
            f"{address!r} is a single bit ({parsed.table}); the probe decodes registers: "
            "use hr:N or ir:N"
        )
    if not 1 <= count <= MAX_PROBE:
        raise ConfigurationError(f"count must be 1-{MAX_PROBE}, got {count}")
    first = max(0, parsed.offset - 1)
    end = min(65536, parsed.offset + count + 1)
    # A bare "hr:100" parses as uint16 ABCD; only a type the user wrote gets marked.
    explicit = "uint16" in text.lower() or (
        parsed.dtype is not DataType.UINT16 or parsed.order is not ByteOrder.ABCD
    )
    dtype = parsed.dtype if explicit and parsed.dtype is not DataType.STRING else None
    order = parsed.order if dtype is not None else None
    return Window(parsed.table, first, end, dtype, order)


class _Reads(Protocol):
    def read(self, tags: list[str], *, errors: Any = ...) -> pd.DataFrame: ...


def read_window(plc: _Reads, table: str, first: int, end: int) -> np.ma.MaskedArray[Any, Any]:
    """Registers ``first``..``end - 1`` of ``table`` as uint16, masked where refused."""
    addresses = [f"{table}:{i}:uint16" for i in range(first, end)]
    try:
        frame = plc.read(addresses, errors="quality")
        good = (frame["quality"] == "good").to_numpy()
        raw = [int(v) if ok else 0 for v, ok in zip(frame["value"], good, strict=True)]
    except (ProtocolError, ConnectionError):
        # Some drivers give up on a block that runs past the device's last register;
        # the one-by-one pass below sorts out which ones exist.
        good = np.zeros(len(addresses), dtype=bool)
        raw = [0] * len(addresses)
    if not good.all():
        # The device refused the block: find the registers that do exist, one by one.
        for k, addr in enumerate(addresses):
            if not good[k]:
                single = plc.read([addr], errors="quality")
                if str(single["quality"].iloc[0]) == "good":
                    raw[k] = int(single["value"].iloc[0])
                    good[k] = True
    return np.ma.MaskedArray(np.array(raw, dtype=np.uint16), mask=~good)
