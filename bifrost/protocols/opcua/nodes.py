"""Well-known OPC UA nodes, builtin type names, and the small parts requests are made of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bifrost.protocols.opcua.address import BrowsePath

BUILD_INFO = {
    "product_name": 2261,
    "product_uri": 2262,
    "manufacturer": 2263,
    "software_version": 2264,
    "build_number": 2265,
    "build_date": 2266,
}
NAMESPACE_ARRAY = 2255
SERVER_STATE = 2259
TYPE_NAMES = {
    1: "Boolean",
    2: "SByte",
    3: "Byte",
    4: "Int16",
    5: "UInt16",
    6: "Int32",
    7: "UInt32",
    8: "Int64",
    9: "UInt64",
    10: "Float",
    11: "Double",
    12: "String",
    13: "DateTime",
    14: "Guid",
    15: "ByteString",
    16: "XmlElement",
    17: "NodeId",
    19: "StatusCode",
    20: "QualifiedName",
    21: "LocalizedText",
    22: "Structure",
    24: "BaseDataType",
    26: "Number",
    27: "Integer",
    28: "UInteger",
    29: "Enumeration",
    887: "EUInformation",
}


def read_value_id(ua: Any, node_id: Any, attribute: Any = None) -> Any:
    """A ReadValueId for one node's attribute (its Value unless given)."""
    rv = ua.ReadValueId()
    rv.NodeId = node_id
    rv.AttributeId = ua.AttributeIds.Value if attribute is None else attribute
    return rv


def local_node_id(ua: Any, node_id: Any) -> Any:
    """A browse result's ExpandedNodeId as a NodeId of this server."""
    # Browse and TranslateBrowsePaths answer ExpandedNodeIds; requests take NodeIds.
    return ua.NodeId(node_id.Identifier, node_id.NamespaceIndex, node_id.NodeIdType)


def plain(dv: Any) -> Any:
    """A DataValue's value as plain Python (None where it is bad)."""
    if dv is None or dv.Value is None:
        return None
    if dv.StatusCode is not None and dv.StatusCode.value >> 30 >= 2:
        return None
    return dv.Value.Value


def starts_at_root(path: BrowsePath) -> bool:
    """Whether a browse path starts at the Root folder rather than Objects."""
    # "/Root/Objects/..." and "/Objects/..." both mean below the Root folder.
    return bool(path.elements) and path.elements[0] == (0, "Root")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_ns(value: datetime) -> int:
    """An aware UTC datetime (asyncua's DateTime: microseconds) as ns since the epoch."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ns_datetime(ns: int) -> datetime:
    """Ns since the epoch as an aware UTC datetime (to the microsecond, as asyncua sends)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)
