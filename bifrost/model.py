"""Pure data types shared by every layer: data types, byte orders, quality codes, tags."""

from __future__ import annotations

import enum
import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bifrost.exceptions import ConfigurationError, value_repr

if TYPE_CHECKING:
    # bifrost-core has no NumPy: it is imported where a dtype is asked for.
    import numpy as np

__all__ = ["ByteOrder", "DataPoint", "DataType", "Quality", "Tag"]


class DataType(enum.Enum):
    """Value types that devices expose, independent of protocol."""

    BOOL = "bool"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"

    @property
    def size(self) -> int:
        """Size in bytes of one value (strings: 0, their length is per tag)."""
        return _SIZES[self]

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        """The NumPy dtype a decoded column of this type has."""
        import numpy as np

        if self is DataType.STRING:
            return np.dtype(object)
        dtype: np.dtype[Any] = np.dtype(self.value)
        return dtype

    @property
    def is_integer(self) -> bool:
        """True for the signed and unsigned integer types."""
        return self.value.startswith(("int", "uint"))

    @property
    def is_float(self) -> bool:
        """True for float32 and float64."""
        return self in (DataType.FLOAT32, DataType.FLOAT64)

    def bounds(self) -> tuple[float, float]:
        """Smallest and largest representable value (for range checks before writing)."""
        import numpy as np

        if self.is_integer:
            info = np.iinfo(self.numpy_dtype)
            return float(info.min), float(info.max)
        if self.is_float:
            fmax = float(np.finfo(self.numpy_dtype).max)
            return -fmax, fmax
        return (0.0, 1.0) if self is DataType.BOOL else (-math.inf, math.inf)


_SIZES = {
    DataType.BOOL: 1,
    DataType.INT8: 1,
    DataType.UINT8: 1,
    DataType.INT16: 2,
    DataType.UINT16: 2,
    DataType.INT32: 4,
    DataType.UINT32: 4,
    DataType.INT64: 8,
    DataType.UINT64: 8,
    DataType.FLOAT32: 4,
    DataType.FLOAT64: 8,
    DataType.STRING: 0,
}


class ByteOrder(enum.Enum):
    """Byte and word order of multi-register values, Modbus style.

    Letters name the bytes of a 32-bit big-endian value ``A B C D`` in the order they
    appear on the wire. ``ABCD`` is big-endian (the Modbus default), ``CDAB`` swaps the
    16-bit words, ``BADC`` swaps the bytes inside each word, ``DCBA`` is little-endian.
    64-bit values extend the same pattern to four words.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"

    @property
    def swap_words(self) -> bool:
        """Whether the 16-bit words come least significant first."""
        return self in (ByteOrder.CDAB, ByteOrder.DCBA)

    @property
    def swap_bytes(self) -> bool:
        """Whether the two bytes inside each 16-bit word are swapped."""
        return self in (ByteOrder.BADC, ByteOrder.DCBA)


class Quality(enum.IntEnum):
    """Quality of a sample, stored as one uint8 per value.

    Codes below 64 are good, 64-127 uncertain, 128 and above bad. The reason is kept so
    that a gap in a recording says why it is there.
    """

    GOOD = 0
    GOOD_OVERFLOW = 1  # good value, but the server dropped older ones (OPC UA overflow bit)
    UNCERTAIN = 64
    # The system clock stepped between this row and the one before it: the row's time is
    # on the recording's clock, but the interval to the previous row is not the true one
    # (see bifrost.clock and the recording's "clock_steps" metadata).
    UNCERTAIN_CLOCK = 65
    BAD = 128
    BAD_COMM_LOST = 129
    BAD_TIMEOUT = 130
    BAD_PROTOCOL = 131
    BAD_CONFIG = 132
    BAD_NO_DATA = 133  # an explicit gap row: no sample could be taken for this cycle

    @property
    def is_good(self) -> bool:
        """True for the good codes."""
        return self < Quality.UNCERTAIN

    @property
    def is_bad(self) -> bool:
        """True for the bad codes."""
        return self >= Quality.BAD


@dataclass(frozen=True, slots=True)
class Tag:
    """A named value on a device.

    Parameters
    ----------
    name
        Name used in tables, DataFrame columns and recordings (e.g. ``"tank.level"``).
    address
        Protocol address, e.g. ``"hr:100:float32:CDAB"``, ``"DB1.DBD4:REAL"`` or
        ``"ns=2;s=Plant.Tank.Level"``.
    unit
        Engineering unit, e.g. ``"m"`` or ``"degC"``.
    scale, offset
        Engineering value = raw value * scale + offset.
    description
        Free text.
    writable
        Whether bifrost may write this tag (the connection must be writable too).
    min, max
        Engineering limits, in ``unit`` (None: none). A write outside them is refused
        before anything is sent (as one that does not fit the tag's type); a value read
        outside them gets :attr:`Quality.UNCERTAIN`.
    step
        Writes must be ``min + k * step`` (``k * step`` without a ``min``), e.g. 0.5 for a
        setpoint in half degrees; None: any value.
    """

    name: str
    address: str
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    description: str = ""
    writable: bool = False
    min: float | None = None
    max: float | None = None
    step: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"a tag needs a non-empty name, got {value_repr(self.name)}")
        _check_unicode(self.name, "name", self.name)
        if not isinstance(self.address, str) or not self.address.strip():
            raise ConfigurationError(f"tag {self.name!r} needs a non-empty address string")
        for field_name in ("unit", "description"):
            text = getattr(self, field_name)
            if not isinstance(text, str):
                raise ConfigurationError(
                    f"tag {self.name!r}: {field_name} must be a string, got {value_repr(text)}"
                )
        if not _finite(self.scale) or self.scale == 0:
            shown = value_repr(self.scale)
            raise ConfigurationError(
                f"tag {self.name!r}: scale must be finite and non-zero, got {shown}"
            )
        if not _finite(self.offset):
            raise ConfigurationError(
                f"tag {self.name!r}: offset must be finite, got {value_repr(self.offset)}"
            )
        for limit in ("min", "max", "step"):
            number = getattr(self, limit)
            if number is None:
                continue
            if not _finite(number):
                raise ConfigurationError(
                    f"tag {self.name!r}: {limit} must be a finite number or None, "
                    f"got {value_repr(number)}"
                )
            object.__setattr__(self, limit, float(number))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigurationError(
                f"tag {self.name!r}: min {self.min:g} is above max {self.max:g}"
            )
        if self.step is not None and self.step <= 0:
            raise ConfigurationError(f"tag {self.name!r}: step must be > 0, got {self.step:g}")
        writable_types = (bool, int, *_numpy_types("bool_"))
        if isinstance(self.writable, writable_types) and self.writable in (0, 1):
            # Frozen: the plan cache hashes tags, so writable is stored as a real bool.
            object.__setattr__(self, "writable", bool(self.writable))
        else:
            shown = value_repr(self.writable)
            raise ConfigurationError(
                f"tag {self.name!r}: writable must be True or False, got {shown}"
            )

    @property
    def is_scaled(self) -> bool:
        """Whether a scale or offset applies to the raw value."""
        return self.scale != 1.0 or self.offset != 0.0

    @property
    def has_limits(self) -> bool:
        """Whether a ``min``, ``max`` or ``step`` applies to the engineering value."""
        return self.min is not None or self.max is not None or self.step is not None

    @property
    def limits_text(self) -> str:
        """``0 to 150 degC`` (``>= 0``, ``<= 150``; ``, step 0.5``); empty without limits."""
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            text = f"{self.min:g} to {self.max:g}{unit}"
        elif self.min is not None:
            text = f">= {self.min:g}{unit}"
        elif self.max is not None:
            text = f"<= {self.max:g}{unit}"
        else:
            text = ""
        if self.step is not None:
            text += f"{', ' if text else ''}step {self.step:g}{unit if not text else ''}"
        return text


def _numpy_types(*names: str) -> tuple[type, ...]:
    """NumPy's scalar types of these names; none before NumPy is imported (no value is one)."""
    numpy = sys.modules.get("numpy")
    return tuple(getattr(numpy, name) for name in names) if numpy is not None else ()


def _finite(number: Any) -> bool:
    value: float = number  # isinstance with the tuples below would narrow number to object
    if isinstance(number, (bool, *_numpy_types("bool_"))) or not isinstance(
        number, (int, float, *_numpy_types("integer", "floating"))
    ):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def _check_unicode(text: str, what: str, name: str) -> None:
    # Names become DataFrame labels (Arrow strings) and Parquet columns: UTF-8 only.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(
            f"tag {what} {name!r} is not valid Unicode: {text[exc.start]!r} at position "
            f"{exc.start} is a lone surrogate"
        ) from None


@dataclass(frozen=True, slots=True)
class DataPoint:
    """One value of one tag at one moment."""

    tag: str
    value: Any
    quality: Quality
    timestamp_ns: int
