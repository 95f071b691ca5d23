"""The OPC UA address grammar: NodeIds and browse paths.

NodeIds use the standard string form (OPC UA Part 6, 5.3.1.10)::

    ns=2;s=Plant.Tank.Level      string identifier in namespace 2
    ns=2;i=1001                  numeric identifier (0 to 2**32-1)
    i=2258                       namespace 0 may be left out
    ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a
    ns=1;b=M/RbKBsRVkePCePcx24oRA==

Browse paths start at the Root node and name one child per level, each as
``nsindex:name`` (namespace 0 may be left out)::

    /Objects/2:Plant/2:Tank/2:Level

Inside a path name, ``&`` escapes the next character, so ``2:A&/B`` is the name ``A/B``.
Parsing is pure: no I/O, errors name the address and the position of the fault.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from bifrost.exceptions import AddressError, ArgumentTypeError, value_repr

__all__ = [
    "BrowsePath",
    "NodeIdAddress",
    "OpcUaAddress",
    "is_opcua_address",
    "parse_opcua_address",
]

IdType = Literal["i", "s", "g", "b"]

_PROTOCOL = "OPC UA"
_MAX_UINT16 = 0xFFFF
_MAX_UINT32 = 0xFFFF_FFFF
_DIGITS = re.compile(r"[0-9]+\Z")
# Longer digit runs are refused before int() sees them: past 4300 digits Python itself
# refuses, and no number in an address needs more than 10.
_MAX_DIGITS = 12
# asyncua encodes a QualifiedName's NamespaceIndex as a signed Int16 (the standard says
# UInt16), so browse names in higher namespaces cannot be sent; their NodeIds can.
_MAX_BROWSE_NAMESPACE = 0x7FFF
_ESCAPED = "&/:"


@dataclass(frozen=True, slots=True)
class NodeIdAddress:
    """A NodeId address.

    Attributes
    ----------
    namespace
        Namespace index (0-65535).
    id_type
        ``"i"`` numeric, ``"s"`` string, ``"g"`` GUID, ``"b"`` opaque (ByteString).
    identifier
        ``int`` for numeric, ``str`` for string, :class:`uuid.UUID` for GUID and
        ``bytes`` for opaque identifiers.
    """

    namespace: int
    id_type: IdType
    identifier: int | str | uuid.UUID | bytes

    def __str__(self) -> str:
        prefix = f"ns={self.namespace};" if self.namespace else ""
        if self.id_type == "b":
            assert isinstance(self.identifier, bytes)
            body = base64.b64encode(self.identifier).decode("ascii")
        else:
            body = str(self.identifier)
        return f"{prefix}{self.id_type}={body}"


@dataclass(frozen=True, slots=True)
class BrowsePath:
    """A browse path from the Root node.

    Attributes
    ----------
    elements
        ``(namespace index, browse name)`` for each level below Root.
    """

    elements: tuple[tuple[int, str], ...]

    def __str__(self) -> str:
        parts = []
        for namespace, name in self.elements:
            escaped = "".join(f"&{c}" if c in _ESCAPED else c for c in name)
            parts.append(f"{namespace}:{escaped}" if namespace else escaped)
        return "/" + "/".join(parts)


OpcUaAddress = NodeIdAddress | BrowsePath


def is_opcua_address(text: str) -> bool:
    """Whether ``text`` looks like an OPC UA address (NodeId or browse path), not a tag name."""
    head = text.lstrip()
    return head.startswith("/") or head[:3].lower() == "ns=" or head[:2].lower() in _ID_PREFIXES


_ID_PREFIXES = ("i=", "s=", "g=", "b=")


def parse_opcua_address(address: str) -> OpcUaAddress:
    """Parse a NodeId (``ns=2;s=Plant.Tank.Level``) or a browse path (``/Objects/2:Plant``).

    Raises
    ------
    AddressError
        With the position of the fault.
    ArgumentTypeError
        For an address that is not a string.
    """
    if not isinstance(address, str):
        # Checked before the cache, which would fail on an unhashable argument.
        raise ArgumentTypeError(
            f"an OPC UA address must be a string, got {value_repr(address)} "
            f"({type(address).__name__})"
        )
    return _parse(address)


def _number(digits: str) -> int | None:
    """ASCII ``digits`` as a number, or None for a run too long to be one that fits."""
    if not _DIGITS.match(digits):
        return None
    if len(digits.lstrip("0")) > _MAX_DIGITS:
        return 1 << 64
    return int(digits)


@functools.lru_cache(maxsize=4096)
def _parse(address: str) -> OpcUaAddress:
    try:
        address.encode("utf-8")
    except UnicodeEncodeError as exc:
        # OPC UA strings are UTF-8 on the wire; a lone surrogate has no encoding.
        raise AddressError(
            address,
            exc.start,
            f"{address[exc.start]!r} is a lone surrogate, not valid Unicode",
            _PROTOCOL,
        ) from None
    if not address.strip():
        raise AddressError(address, 0, "the address is empty", _PROTOCOL)
    if address.startswith("/"):
        return _parse_path(address)
    return _parse_node_id(address)


def _parse_node_id(address: str) -> NodeIdAddress:
    namespace = 0
    pos = 0
    if address[:3].lower() == "ns=":
        end = address.find(";")
        if end < 0:
            raise AddressError(
                address, len(address), "expected ';' after the namespace index", _PROTOCOL
            )
        number = _number(address[3:end])
        if number is None:
            raise AddressError(address, 3, "the namespace index must be a number", _PROTOCOL)
        namespace = number
        if namespace > _MAX_UINT16:
            raise AddressError(address, 3, "the namespace index must be 0-65535", _PROTOCOL)
        pos = end + 1
    kind = address[pos : pos + 2].lower()
    if kind not in _ID_PREFIXES:
        raise AddressError(
            address,
            pos,
            "expected 'i=', 's=', 'g=' or 'b=' (e.g. 'ns=2;s=Plant.Tank.Level'), or a browse "
            "path starting with '/'",
            _PROTOCOL,
        )
    body_at = pos + 2
    body = address[body_at:]
    id_type: IdType = kind[0]  # type: ignore[assignment]
    if not body:
        raise AddressError(address, body_at, "the identifier is empty", _PROTOCOL)
    identifier: int | str | uuid.UUID | bytes
    if id_type == "i":
        number = _number(body)
        if number is None:
            raise AddressError(address, body_at, "a numeric identifier must be digits", _PROTOCOL)
        identifier = number
        if identifier > _MAX_UINT32:
            raise AddressError(
                address, body_at, "a numeric identifier must be 0 to 4294967295", _PROTOCOL
            )
    elif id_type == "s":
        identifier = body
    elif id_type == "g":
        try:
            identifier = uuid.UUID(body)
        except ValueError:
            raise AddressError(
                address,
                body_at,
                "a GUID looks like 09087e75-8e5e-499b-954f-f2a9603db28a",
                _PROTOCOL,
            ) from None
    else:
        try:
            identifier = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise AddressError(
                address, body_at, "an opaque identifier must be base64", _PROTOCOL
            ) from None
    return NodeIdAddress(namespace, id_type, identifier)


def _parse_path(address: str) -> BrowsePath:
    elements: list[tuple[int, str]] = []
    pos = 1
    n = len(address)
    while True:
        start = pos
        chars: list[str] = []
        colon_at = -1
        while pos < n and address[pos] != "/":
            c = address[pos]
            if c == "&":
                if pos + 1 >= n:
                    raise AddressError(address, pos, "'&' must escape a character", _PROTOCOL)
                chars.append(address[pos + 1])
                pos += 2
                continue
            if c == ":" and colon_at < 0:
                colon_at = len(chars)
            chars.append(c)
            pos += 1
        text = "".join(chars)
        namespace = 0
        name = text
        if colon_at >= 0:
            number = _number(text[:colon_at])
            if number is None:
                raise AddressError(
                    address,
                    start,
                    "a path element is 'nsindex:name' with a numeric index (e.g. '2:Tank'); "
                    "escape a literal ':' as '&:'",
                    _PROTOCOL,
                )
            namespace = number
            if namespace > _MAX_BROWSE_NAMESPACE:
                raise AddressError(
                    address,
                    start,
                    "a browse path's namespace index must be 0-32767 (bifrost's OPC UA "
                    "library sends it as a signed 16-bit number); address nodes in higher "
                    "namespaces by NodeId, e.g. 'ns=40000;s=...'",
                    _PROTOCOL,
                )
            name = text[colon_at + 1 :]
        if not name:
            raise AddressError(address, start, "a path element is empty", _PROTOCOL)
        elements.append((namespace, name))
        if pos >= n:
            break
        pos += 1  # the '/'
        if pos >= n:
            raise AddressError(address, pos - 1, "the path ends with '/'", _PROTOCOL)
    return BrowsePath(tuple(elements))
