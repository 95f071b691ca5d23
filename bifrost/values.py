"""Values to write: engineering units undone once, then checked against the raw type.

Every protocol's ``compile_write`` receives raw values (``aio`` calls :func:`unscale`
once per write) and checks them with :func:`check` (OPC UA, which learns a node's type
from the server, with :func:`check_raw`), so a tag of a given type accepts the same
values over every protocol:

* bool tags take ``True``/``False`` (NumPy's too) and the numbers 0 and 1;
* number tags take ints and floats (NumPy's too), never bools, strings or ``None``;
  integer tags take floats only when they are whole (within 1e-6, for scaled tags);
* float tags take NaN; infinities are refused everywhere, like values beyond the type's
  range;
* a float that the tag's type cannot hold exactly (``16777217`` or ``0.123456789`` in a
  float32, ``2**53 + 1`` in a float64) is rounded with a :class:`PrecisionWarning`, or
  refused with :class:`ValueOutOfRange` under ``write(..., exact=True)``. A float32
  counts as exact when its shortest decimal form is the value given (``0.1`` is exact);
* string tags take ``str`` without NUL characters (a device ends the string there) in
  the protocol's encoding (Latin-1 for Modbus and S7, UTF-8 for OPC UA);
* a tag with engineering limits (``min``, ``max``, ``step``: :class:`~bifrost.Tag`)
  takes numbers within them only (:func:`check_limits`, in engineering units, before
  unscaling): a setpoint of 0-150 degC refuses 1e9 though a float32 holds it.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bifrost.exceptions import PrecisionWarning, ValueOutOfRange, value_repr
from bifrost.model import DataType, Tag

__all__ = ["check", "check_limits", "check_raw", "exact_writes", "unscale"]

# A scaled write of 7.5 with scale 0.1 gives 74.99999999999999; this is how far a raw
# value may sit from the integer it stands for.
_INTEGER_TOLERANCE = 1e-6

# Whether the write in progress refuses rounding (write(..., exact=True)). A context
# variable rather than an argument: the drivers' compile_write/execute_write take the
# values only, and each write runs in its own task, so concurrent writes keep their own.
_EXACT: contextvars.ContextVar[bool] = contextvars.ContextVar("bifrost_exact_writes", default=False)

_NUMBER = (int, float, np.integer, np.floating)


@contextlib.contextmanager
def exact_writes(exact: bool) -> Iterator[None]:
    """Within the block, refuse rounded float writes (``exact=True``) or warn about them."""
    token = _EXACT.set(exact)
    try:
        yield
    finally:
        _EXACT.reset(token)


def unscale(tag: Tag, value: Any) -> Any:
    """The raw value a tag's engineering value stands for (lists element by element).

    Unscaled tags get their value back unchanged, for the protocol's own checks. The
    tag's engineering limits are checked first (:func:`check_limits`).

    Raises
    ------
    ValueOutOfRange
        For a scaled tag given something that is not a number, or nested lists; for a
        number outside the tag's limits.
    """
    if tag.has_limits:
        check_limits(tag, value)
    if not tag.is_scaled:
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_unscale_one(tag, item) for item in value]
    return _unscale_one(tag, value)


def _unscale_one(tag: Tag, value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueOutOfRange(
            f"tag {tag.name!r} is scaled (x{tag.scale:g} {tag.offset:+g}); got "
            f"{value_repr(value)}, not a number"
        )
    try:
        return (value - tag.offset) / tag.scale
    except OverflowError:  # an int beyond the float range
        raise ValueOutOfRange(
            f"tag {tag.name!r}: {value_repr(value)} is beyond the range of any number type"
        ) from None


# A step of 0.1 from 0 puts 0.3 at 2.9999999999999996 steps: this much is still on a step.
_STEP_TOLERANCE = 1e-9


def check_limits(tag: Tag, value: Any) -> None:
    """Refuse a number outside ``tag``'s ``min``/``max`` or off its ``step`` (engineering units).

    Lists and arrays are checked element by element. What is not a number (a bool, a
    string) is left to the type check, which knows what the tag takes.

    Raises
    ------
    ValueOutOfRange
        Naming the tag, the value and the range; nothing is sent.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    for item in value if isinstance(value, list | tuple) else (value,):
        _check_limit(tag, item)


def _check_limit(tag: Tag, value: Any) -> None:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range is beyond any limit
        number = math.inf if value > 0 else -math.inf
    if math.isnan(number):
        if tag.min is not None or tag.max is not None:
            raise ValueOutOfRange(
                f"tag {tag.name!r}: NaN is outside its range {tag.limits_text}; nothing was written"
            )
        return
    unit = f" {tag.unit}" if tag.unit else ""
    shown = value_repr(value)
    if tag.min is not None and number < tag.min:
        raise ValueOutOfRange(
            f"tag {tag.name!r}: {shown}{unit} is below its minimum {tag.min:g}{unit} "
            f"(range {tag.limits_text}); nothing was written"
        )
    if tag.max is not None and number > tag.max:
        raise ValueOutOfRange(
            f"tag {tag.name!r}: {shown}{unit} is above its maximum {tag.max:g}{unit} "
            f"(range {tag.limits_text}); nothing was written"
        )
    if tag.step is not None:
        base = tag.min if tag.min is not None else 0.0
        steps = (number - base) / tag.step
        if abs(steps - round(steps)) > _STEP_TOLERANCE * max(1.0, abs(steps)):
            nearest = base + round(steps) * tag.step
            raise ValueOutOfRange(
                f"tag {tag.name!r}: {shown}{unit} is not on its step of {tag.step:g}{unit}"
                f" (from {base:g}); the nearest is {nearest:g}{unit}; nothing was written"
            )


def check(tag: Tag, raw: Any, dtype: DataType, length: int = 0) -> Any:
    """Check a raw value against ``dtype`` and convert it to the Python type sent.

    ``length`` is a string's room in characters (Latin-1, one byte each).

    Raises
    ------
    ValueOutOfRange
        Naming the tag and the value when it does not fit ``dtype``; nothing is sent.
    """
    shown = None if not tag.is_scaled else _engineering(tag)
    return check_raw(raw, dtype, f"tag {tag.name!r}", length=length, shown=shown)


def check_raw(
    raw: Any,
    dtype: DataType,
    label: str,
    *,
    type_name: str = "",
    length: int | None = None,
    encoding: str = "latin-1",
    shown: Callable[[Any], Any] | None = None,
) -> Any:
    """Check a raw value against ``dtype`` and convert it to the Python type sent.

    Parameters
    ----------
    raw
        The value to write, already unscaled.
    dtype
        The tag's type.
    label
        How messages name the tag, e.g. ``"tag 'tank.level'"``.
    type_name
        The type as the protocol names it in messages (default: ``dtype.value``).
    length
        A string's room in encoded bytes; None for no limit.
    encoding
        The encoding strings are sent in.
    shown
        Turns a raw value into the value the user wrote, for messages of scaled tags.

    Raises
    ------
    ValueOutOfRange
        Naming the tag and the value when it does not fit; a :class:`PrecisionWarning`
        is issued (or, under :func:`exact_writes`, this error raised) for rounded floats.
    """
    kind = type_name or dtype.value
    if dtype is DataType.STRING:
        return _check_string(raw, label, kind, length, encoding)
    if dtype is DataType.BOOL:
        if isinstance(raw, bool | np.bool_):
            return bool(raw)
        if isinstance(raw, _NUMBER) and raw in (0, 1):
            return bool(raw)
        raise ValueOutOfRange(f"{label} is {kind}; got {_given(raw)} (use True/False or 0/1)")
    if isinstance(raw, bool | np.bool_):
        raise ValueOutOfRange(
            f"{label} is {kind}; got {raw!r}, a bool, not a number (write 1 or 0)"
        )
    if not isinstance(raw, _NUMBER):
        raise ValueOutOfRange(f"{label} is {kind}; got {_given(raw)}, not a number")
    if dtype.is_integer:
        return _check_integer(raw, dtype, label, kind, shown)
    return _check_float(raw, dtype, label, kind, shown)


def _check_string(raw: Any, label: str, kind: str, length: int | None, encoding: str) -> str:
    if not isinstance(raw, str):
        raise ValueOutOfRange(f"{label} is {kind}; got {_given(raw)}, not a str")
    nul = raw.find("\0")
    if nul >= 0:
        raise ValueOutOfRange(
            f"{label}: {value_repr(raw)} has a NUL character at position {nul}; devices end "
            "strings there, so it would read back cut short"
        )
    try:
        encoded = raw.encode(encoding)
    except UnicodeEncodeError as exc:
        bad = raw[exc.start]
        reason = (
            "a lone surrogate, not valid Unicode"
            if "\ud800" <= bad <= "\udfff"
            else f"not in {_ENCODING_NAMES.get(encoding, encoding)}"
        )
        raise ValueOutOfRange(
            f"{label}: {value_repr(raw)} has {bad!r} at position {exc.start}, {reason}"
        ) from None
    if length is not None and len(encoded) > length:
        raise ValueOutOfRange(
            f"{label}: {value_repr(raw)} has {len(encoded)} characters, room for {length}"
        )
    return str(raw)


_ENCODING_NAMES = {"latin-1": "Latin-1 (ISO 8859-1)", "utf-8": "UTF-8"}


def _check_integer(
    raw: Any, dtype: DataType, label: str, kind: str, shown: Callable[[Any], Any] | None
) -> int:
    info = np.iinfo(dtype.numpy_dtype)
    low, high = int(info.min), int(info.max)
    if isinstance(raw, int | np.integer):
        # Compared as ints: every digit counts (int64 beyond 2**53), and no int is too
        # large to compare (float() of one beyond 2**1024 would raise).
        exact = int(raw)
    else:
        number = float(raw)
        if not math.isfinite(number):
            raise ValueOutOfRange(f"{label} is {kind}: {_user(raw, shown)} is not a finite number")
        rounded = round(number)
        if abs(rounded - number) > _INTEGER_TOLERANCE * max(1.0, abs(number)):
            raise ValueOutOfRange(
                f"{label} is {kind}: {_user(raw, shown)} is not representable"
                f" (raw value {number!r} is not an integer)"
            )
        exact = int(rounded)
    if not low <= exact <= high:
        raise ValueOutOfRange(
            f"{label} is {kind}: {_user(raw, shown)} is outside {low}..{high}"
            + (" after scale/offset" if shown is not None else "")
        )
    return exact


def _check_float(
    raw: Any, dtype: DataType, label: str, kind: str, shown: Callable[[Any], Any] | None
) -> float:
    limit = float(np.finfo(dtype.numpy_dtype).max)
    bits = 8 * dtype.size
    if isinstance(raw, int | np.integer):
        if abs(int(raw)) > limit:
            raise _overflow(raw, label, kind, bits, limit, shown)
        number = float(raw)
    else:
        number = float(raw)
        if math.isnan(number):
            return number
        if math.isinf(number):
            raise ValueOutOfRange(
                f"{label} is {kind}: {_user(raw, shown)} is not a finite number (bifrost "
                "writes no infinities; NaN is accepted)"
            )
        if abs(number) > limit:
            raise _overflow(raw, label, kind, bits, limit, shown)
    stored = float(np.float32(number)) if dtype is DataType.FLOAT32 else number
    if not _holds(raw, number, stored, dtype):
        message = (
            f"{label} is {kind}: {_user(raw, shown)} is stored as {_stored(stored, dtype)}"
            f" (the nearest value a {bits}-bit float holds)"
        )
        if _EXACT.get():
            raise ValueOutOfRange(f"{message}; exact=True refuses rounding")
        warnings.warn(PrecisionWarning(message), stacklevel=2)
    return stored


def _holds(raw: Any, number: float, stored: float, dtype: DataType) -> bool:
    if isinstance(raw, int | np.integer):
        return stored == int(raw)  # int against float compares exactly in Python
    if stored == number:
        return True
    # A float32 read back shows its shortest decimal form: when that is the value the
    # user typed (0.1 stored as 0.100000001490116), nothing visible was lost.
    return dtype is DataType.FLOAT32 and float(str(np.float32(stored))) == number


def _stored(stored: float, dtype: DataType) -> str:
    # A float32 as it reads back: its shortest form, in Python's notation (16777216.0).
    return repr(float(str(np.float32(stored)))) if dtype is DataType.FLOAT32 else repr(stored)


def _overflow(
    raw: Any, label: str, kind: str, bits: int, limit: float, shown: Callable[[Any], Any] | None
) -> ValueOutOfRange:
    return ValueOutOfRange(
        f"{label} is {kind}: {_user(raw, shown)} overflows it (a {bits}-bit float holds "
        f"magnitudes up to {limit:.7g})"
    )


def _given(value: Any) -> str:
    # A value of an unexpected kind: its type is as telling as its repr.
    if value is None or isinstance(value, str | int | float):
        return value_repr(value)
    return f"{value_repr(value)} (a {type(value).__name__})"


def _user(raw: Any, shown: Callable[[Any], Any] | None) -> str:
    # Messages name the value the user wrote, not the raw one derived from it.
    if shown is None:
        return value_repr(raw)
    try:
        return value_repr(shown(raw))
    except OverflowError:
        return value_repr(raw)


def _engineering(tag: Tag) -> Callable[[Any], Any]:
    return lambda raw: float(raw) * tag.scale + tag.offset
