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

from bifrost.exceptions import AddressError

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
_DIGITS = re.compile(r"\d+\Z")
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


@functools.lru_cache(maxsize=4096)
def parse_opcua_address(address: str) -> OpcUaAddress:
    """Parse a NodeId (``ns=2;s=Plant.Tank.Level``) or a browse path (``/Objects/2:Plant``).

    Raises
    ------
    AddressError
        With the position of the fault.
    """
    if not isinstance(address, str):
        raise AddressError(str(address), 0, "an address must be a string", _PROTOCOL)
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
        digits = address[3:end]
        if not _DIGITS.match(digits):
            raise AddressError(address, 3, "the namespace index must be a number", _PROTOCOL)
        namespace = int(digits)
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
        if not _DIGITS.match(body):
            raise AddressError(address, body_at, "a numeric identifier must be digits", _PROTOCOL)
        identifier = int(body)
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
            prefix = text[:colon_at]
            if not _DIGITS.match(prefix):
                raise AddressError(
                    address,
                    start,
                    "a path element is 'nsindex:name' with a numeric index (e.g. '2:Tank'); "
                    "escape a literal ':' as '&:'",
                    _PROTOCOL,
                )
            namespace = int(prefix)
            if namespace > _MAX_UINT16:
                raise AddressError(address, start, "the namespace index must be 0-65535", _PROTOCOL)
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
