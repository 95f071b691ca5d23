"""Short errors for the magics and the Python API: the error, and what to do about it.

The hints that show addresses use the syntax of the protocol the command talked to, so
an S7 user is not told to write ``hr:0:float32``. :func:`hint` words them for the
magics (``%bifrost browse NAME``), :func:`api_hint` for Python calls (``plc.tags.names``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bifrost.exceptions import (
    AddressError,
    ArgumentTypeError,
    ConfigurationError,
    ConnectionError,
    MissingDependency,
    ProtocolError,
    TagNotFound,
    TimeoutError,
    ValueOutOfRange,
    WriteNotAllowed,
)

__all__ = ["BifrostMagicError", "NoSuchConnection", "api_hint", "hint", "protocol_of_url"]


class BifrostMagicError(Exception):
    """A bifrost error raised by a magic, shown as a short message (no traceback).

    Attributes
    ----------
    error
        The original :class:`~bifrost.BifrostError` (also ``__cause__``).
    hint
        What to do about it.
    """

    def __init__(self, error: BaseException, hint: str) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error
        self.hint = hint

    def _render_traceback_(self) -> list[str]:
        # IPython and ipykernel print these lines instead of the traceback.
        red, reset = "\x1b[0;31m", "\x1b[0m"
        lines = [f"{red}{type(self.error).__name__}{reset}: {self.error}"]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return lines


class NoSuchConnection(ConfigurationError):
    """A magic named a connection that the magics do not hold."""


@dataclass(frozen=True)
class _Protocol:
    """What the hints say about one protocol's addresses."""

    addresses: str  # for a malformed address
    raw: str  # for a tag name that is not in the table
    refused: str  # for a request the device answered with an error


_PROTOCOLS = {
    "modbus": _Protocol(
        addresses="addresses look like hr:0:float32, ir:5, co:3, 40101",
        raw="raw addresses (hr:0:float32) work too",
        refused="the device refused it: does that address exist on the device (and the unit id)?",
    ),
    "s7": _Protocol(
        addresses="addresses look like DB1.DBD0:REAL, DB1.DBX0.1, MW10:INT, I0.0",
        raw="raw addresses (DB1.DBD0:REAL) work too",
        refused=(
            "the PLC refused it: does that DB and offset exist "
            "(the DB not optimized, PUT/GET allowed)?"
        ),
    ),
    "opcua": _Protocol(
        addresses=(
            "addresses look like ns=2;s=Plant.Tank.Level, ns=2;i=1001, "
            "/Objects/2:Plant/2:Tank/2:Level"
        ),
        raw="raw addresses (ns=2;s=... or /Objects/2:Plant/...) work too",
        refused="the server refused it: does that node exist, and may this session use it?",
    ),
}

# Protocols plugged in from other distributions: nothing is known about their syntax.
_OTHER = _Protocol(
    addresses="check the address against the protocol's address syntax",
    raw="raw addresses work too",
    refused="the device refused it: does that address exist on the device?",
)

# URL schemes of the protocols above; anything else is named by its scheme.
_SCHEMES = {
    "modbus": "modbus",
    "modbus+tcp": "modbus",
    "modbus+rtu": "modbus",
    "s7": "s7",
    "opc.tcp": "opcua",
}


def protocol_of_url(url: str) -> str | None:
    """``s7://plc`` -> ``s7``, ``opc.tcp://...`` -> ``opcua``; None without a scheme."""
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        return None
    return _SCHEMES.get(scheme.lower(), scheme.lower())


_READ_ONLY_TAG = (
    "this connection may write, but not this tag: it is read-only in the tag table "
    "(writable: false) or on the device"
)


def hint(
    error: BaseException, command: str, protocol: str | None = None, writable: bool | None = None
) -> str:
    """What to do about ``error``, raised by ``%bifrost command``.

    Parameters
    ----------
    error
        The bifrost error.
    command
        The command that raised it (empty when unknown).
    protocol
        The protocol of the connection the command used (``modbus``, ``s7``,
        ``opcua``...); None when it used none, which gives the Modbus examples of the
        simulator that ``%bifrost sim start`` serves.
    writable
        Whether that connection may write (None: unknown, or no connection).
    """
    about = _PROTOCOLS.get(protocol or "modbus", _OTHER)
    if isinstance(error, AddressError):
        more = " (see `%bifrost help`)" if (protocol or "modbus") == "modbus" else ""
        return about.addresses + more
    if isinstance(error, TagNotFound):
        return f"`%bifrost browse NAME` lists the tags; {about.raw}"
    if isinstance(error, WriteNotAllowed):
        if writable:
            return _READ_ONLY_TAG
        return "connect with `%bifrost connect NAME URL --writable` (and the tag must be writable)"
    if isinstance(error, NoSuchConnection):
        return (
            "`%bifrost sim start --connect NAME` starts the simulated plant and connects to it; "
            "`%bifrost connect NAME URL` connects to a device"
        )
    if isinstance(error, ValueOutOfRange):
        return (
            "nothing was written; give a value that fits the tag's type and range "
            "(`%bifrost browse NAME` shows the limits)"
        )
    if isinstance(error, ConnectionError):
        return (
            "is the device (or `%bifrost sim start`) running at that address? "
            "`%bifrost status` shows the connections"
        )
    if isinstance(error, ProtocolError):
        return about.refused
    if isinstance(error, MissingDependency):
        return ""
    if command:
        return f"`%bifrost {command} --help` shows the arguments"
    return "`%bifrost help` lists the commands"


def api_hint(
    error: BaseException,
    protocol: str | None = None,
    writable: bool | None = None,
    variable: str = "plc",
    method: str = "",
) -> str:
    """What to do about ``error``, raised by a Python call (``plc.read([...])``).

    Parameters
    ----------
    error
        The bifrost error.
    protocol
        The protocol of the connection the call used; None: unknown.
    writable
        Whether that connection may write (None: unknown).
    variable
        The name the user's connection goes by, for the calls the hint suggests.
    method
        The method that raised (``read``), for the ``help()`` hint; empty: none.
    """
    about = _PROTOCOLS.get(protocol or "", _OTHER) if protocol else None
    if isinstance(error, AddressError):
        return about.addresses if about else "check the address against the protocol's syntax"
    if isinstance(error, TagNotFound):
        raw = about.raw if about else "raw addresses work too"
        return f"`{variable}.tags.names` lists the tags; {raw}"
    if isinstance(error, WriteNotAllowed):
        if writable:
            return _READ_ONLY_TAG
        return "connect with writable=True to write, e.g. bf.connect(url, writable=True)"
    if isinstance(error, ValueOutOfRange):
        return (
            "nothing was written; give a value that fits the tag's type and range "
            f"(`{variable}.browse()` shows the limits)"
        )
    if isinstance(error, TimeoutError):
        return "the device did not answer in time: is it busy, or the address (unit id) wrong?"
    if isinstance(error, ConnectionError):
        return "is the device (or the simulated plant) running and reachable at that address?"
    if isinstance(error, ProtocolError):
        return about.refused if about else _OTHER.refused
    if isinstance(error, ArgumentTypeError | ConfigurationError) and method:
        owner = variable if method != "connect" else "bf"
        return f"`help({owner}.{method})` shows the arguments"
    return ""
