"""Browsing: one level's Browse (and BrowseNext) call, then one Read of the nodes' details."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bifrost.protocols.opcua.limits import batched
from bifrost.protocols.opcua.nodes import TYPE_NAMES, plain, read_value_id

MAX_BROWSE_NODES = 50_000  # a browse never walks more than this many nodes
_MAX_CONTINUATIONS = 1_000
NODE_CLASSES = {
    1: "Object",
    2: "Variable",
    4: "Method",
    8: "ObjectType",
    16: "VariableType",
    32: "ReferenceType",
    64: "DataType",
    128: "View",
}

# The driver's request wrapper: awaits a request, translates its failures.
_Call = Callable[[str, Any], Awaitable[Any]]


async def browse_level(
    ua: Any, call: _Call, client: Any, nodes: Sequence[Any], limit: int | None = None
) -> list[list[Any]]:
    """The references of each node, continuation points followed (bounded).

    One Browse call per ``limit`` nodes (the server's MaxNodesPerBrowse).
    """
    out: list[list[Any]] = []
    for part in batched(nodes, limit):
        out.extend(await _browse(ua, call, client, part))
    return out


async def _browse(ua: Any, call: _Call, client: Any, nodes: Sequence[Any]) -> list[list[Any]]:
    params = ua.BrowseParameters()
    params.View = ua.ViewDescription()
    params.RequestedMaxReferencesPerNode = 0
    for node in nodes:
        description = ua.BrowseDescription()
        description.NodeId = node
        description.BrowseDirection = ua.BrowseDirection.Forward
        description.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
        description.IncludeSubtypes = True
        description.NodeClassMask = 0
        description.ResultMask = ua.BrowseResultMask.All
        params.NodesToBrowse.append(description)
    results = await call("browsing", client.uaclient.browse(params))
    out: list[list[Any]] = []
    for result in results:
        references = list(result.References or [])
        continuation = result.ContinuationPoint
        for _ in range(_MAX_CONTINUATIONS):
            if not continuation:
                break
            more = ua.BrowseNextParameters()
            more.ContinuationPoints = [continuation]
            (next_result,) = await call("browsing", client.uaclient.browse_next(more))
            references.extend(next_result.References or [])
            continuation = next_result.ContinuationPoint
        has_property = ua.NodeId(ua.ObjectIds.HasProperty)
        out.append([r for r in references if r.ReferenceTypeId != has_property])
    return out


async def node_details(
    ua: Any,
    call: _Call,
    client: Any,
    node_ids: Sequence[Any],
    references: Sequence[Any],
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Class, data type, value rank and access of each found node.

    One Read call per ``limit`` attributes (the server's MaxNodesPerRead).
    """
    if not node_ids:
        return []
    ids = list(node_ids)
    attributes = (
        ua.AttributeIds.Description,
        ua.AttributeIds.DataType,
        ua.AttributeIds.ValueRank,
        ua.AttributeIds.AccessLevel,
    )
    params = ua.ReadParameters()
    for node_id in ids:
        for attribute in attributes:
            params.NodesToRead.append(read_value_id(ua, node_id, attribute))
    values: list[Any] = []
    for part in batched(params.NodesToRead, limit):
        batch = ua.ReadParameters()
        batch.NodesToRead = list(part)
        values.extend(await call("reading node details", client.uaclient.read(batch)))
    details = []
    for i, ref in enumerate(references):
        description, dt, rank, access = (plain(values[4 * i + j]) for j in range(4))
        variable = int(ref.NodeClass) == 2
        type_name = ""
        if variable and dt is not None:
            type_name = (
                TYPE_NAMES.get(dt.Identifier, dt.to_string())
                if dt.NamespaceIndex == 0
                else dt.to_string()
            )
            if rank is not None and int(rank) >= 0:
                type_name += "[]"
        level = int(access or 0) if variable else 0
        details.append(
            {
                "data_type": type_name,
                "access_level": ("R" if level & 1 else "") + ("W" if level & 2 else ""),
                "writable": bool(level & 2),
                "description": (description.Text or "") if description is not None else "",
            }
        )
    return details
