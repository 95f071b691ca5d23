"""The one exception tree of bifrost.

Every error bifrost raises is a :class:`BifrostError`; driver libraries' exceptions
(pymodbus, snap7, asyncua) are translated at the driver boundary and never reach users::

    BifrostError
    ├── ConfigurationError          bad URL, keyword, unit id or tag file; nothing was sent
    ├── ArgumentTypeError           an argument of the wrong kind (a tag that is not a name)
    ├── AddressError                malformed address (names the address and the position)
    ├── TagNotFound                 a tag name that is not in the connection's tag table
    ├── ValueOutOfRange             a value that does not fit the tag's type (before any I/O)
    ├── WriteNotAllowed             writing to a read-only connection or tag
    ├── MissingDependency           an optional extra is not installed (names the pip command)
    ├── ConnectionError             could not connect, or the connection was lost
    │   └── TimeoutError            a call did not finish within its timeout (it was cancelled)
    └── ProtocolError               the device answered with an error (carries code and tags)

Several classes also derive from the matching builtin (``ValueError``, ``TypeError``,
``KeyError``, ``ImportError``, ``ConnectionError``, ``TimeoutError``) so that generic
handlers work.

Warnings are :class:`BifrostWarning` (a ``UserWarning``): :class:`PrecisionWarning` when a
written float is rounded by the tag's type, :class:`TagFileWarning` when a tag file had
to be read with a guessed encoding.
"""

from __future__ import annotations

import builtins
import reprlib
from collections.abc import Sequence
from typing import Any

__all__ = [
    "AddressError",
    "ArgumentTypeError",
    "BifrostError",
    "BifrostWarning",
    "ConfigurationError",
    "ConnectionError",
    "MissingDependency",
    "PrecisionWarning",
    "ProtocolError",
    "TagFileWarning",
    "TagNotFound",
    "TimeoutError",
    "ValueOutOfRange",
    "WriteNotAllowed",
    "value_repr",
]


class BifrostError(Exception):
    """Base class of every error raised by bifrost."""


class ConfigurationError(BifrostError, ValueError):
    """A connection URL, keyword argument or option is invalid; nothing was sent."""


class ArgumentTypeError(BifrostError, TypeError):
    """An argument is of the wrong kind, e.g. a tag given as ``None`` or ``5``.

    Also a ``TypeError``, which is what these calls raised before.
    """


class AddressError(BifrostError, ValueError):
    """An address string could not be parsed.

    Parameters
    ----------
    address
        The offending address, as given.
    position
        0-based character position of the fault in ``address``.
    reason
        What was expected there.
    protocol
        Protocol whose grammar was applied.
    """

    def __init__(self, address: str, position: int, reason: str, protocol: str = "") -> None:
        self.address = address
        self.position = position
        self.reason = reason
        self.protocol = protocol
        proto = f"{protocol} " if protocol else ""
        pointer = " " * (position + 1) + "^"
        super().__init__(
            f"invalid {proto}address {address!r} at position {position}: {reason}\n"
            f"  {address!r}\n  {pointer}"
        )


class TagNotFound(BifrostError, KeyError):
    """A tag name is neither in the tag table nor a valid address."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better.
        return str(self.args[0]) if self.args else ""


class ValueOutOfRange(BifrostError, ValueError):
    """A value to write does not fit the tag's data type or range."""


class WriteNotAllowed(BifrostError, PermissionError):
    """A write was refused: the connection or the tag is read-only."""


class MissingDependency(BifrostError, ImportError):
    """An optional part of bifrost needs an extra that is not installed."""


class ConnectionError(BifrostError, builtins.ConnectionError):
    """Could not connect to the device, or the connection was lost."""


class TimeoutError(ConnectionError, builtins.TimeoutError):
    """A call did not complete within its timeout; it was cancelled."""


class ProtocolError(BifrostError):
    """The device answered a request with an error.

    Parameters
    ----------
    message
        Human-readable description.
    code
        The protocol's error code (a Modbus exception code, an S7 error or an OPC UA
        StatusCode), if any.
    tags
        Names of the tags the failed request was for.
    """

    def __init__(self, message: str, code: int | None = None, tags: Sequence[str] = ()) -> None:
        self.code = code
        self.tags = tuple(tags)
        super().__init__(message)


class BifrostWarning(UserWarning):
    """Base class of bifrost's warnings."""


class PrecisionWarning(BifrostWarning):
    """A value written to a float tag was rounded to the nearest value the type holds.

    The message names the tag, the value given and the value stored. Pass
    ``exact=True`` to ``write()`` to refuse such writes with :class:`ValueOutOfRange`.
    """


class TagFileWarning(BifrostWarning):
    """A tag file was read with a guess, e.g. as Windows-1252 because it is not UTF-8."""


_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_LONG_INT_BITS = 128


def value_repr(value: Any) -> str:
    """A short ``repr`` of a user's value for error messages; never raises.

    Huge ints (whose ``repr`` Python refuses beyond 4300 digits), deep or long
    containers and objects with a failing ``__repr__`` all get a bounded text.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        bits = value.bit_length()
        if bits > _LONG_INT_BITS:
            digits = int(bits * 0.30103) + 1
            article = "a negative" if value < 0 else "an"
            return f"<{article} integer of about {digits} digits>"
    try:
        return _REPR.repr(value)
    except Exception:  # a user object whose __repr__ itself fails
        return f"<{type(value).__name__} object>"
