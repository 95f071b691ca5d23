"""The server's OperationLimits, read once per session, and requests split to respect them.

A server that states MaxNodesPerRead = 100 answers BadTooManyOperations to a Read of
101 nodes; every service bifrost sends with many operations is cut into batches that
fit the server's stated limit for that service (no limit stated: one request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from bifrost.protocols.opcua.nodes import read_value_id

__all__ = ["OperationLimits", "batched", "read_limits"]

T = TypeVar("T")

# Server/ServerCapabilities/OperationLimits/<name> (ns=0), per field of OperationLimits.
_NODES = {
    "read": 11705,  # MaxNodesPerRead
    "write": 11707,  # MaxNodesPerWrite
    "method_call": 11709,  # MaxNodesPerMethodCall
    "browse": 11710,  # MaxNodesPerBrowse
    "translate": 11712,  # MaxNodesPerTranslateBrowsePathsToNodeIds
    "monitored_items": 11714,  # MaxMonitoredItemsPerCall
    "history_read_data": 12165,  # MaxNodesPerHistoryReadData
    "history_read_events": 12166,  # MaxNodesPerHistoryReadEvents
}


@dataclass(slots=True)
class OperationLimits:
    """Most operations per request of each service; None where the server states none."""

    read: int | None = None
    write: int | None = None
    method_call: int | None = None
    browse: int | None = None
    translate: int | None = None
    monitored_items: int | None = None
    history_read_data: int | None = None
    history_read_events: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        """The limits by name (for ``info()``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def batched(items: Sequence[T], limit: int | None) -> list[Sequence[T]]:
    """``items`` cut into runs of at most ``limit`` (one run when there is no limit)."""
    if not items:
        return []
    size = limit or len(items)
    return [items[start : start + size] for start in range(0, len(items), size)]


async def read_limits(
    ua: Any, read: Callable[[Any], Awaitable[list[Any]]], read_override: int | None
) -> OperationLimits:
    """The server's OperationLimits; ``read_override`` replaces MaxNodesPerRead.

    MaxNodesPerRead comes first, alone, so the others are read within it. The nodes are
    optional (a server without them states no limit); 0 means no limit (OPC UA Part 5,
    6.3.11).
    """
    limits = OperationLimits()
    names = list(_NODES)
    await _read_into(ua, read, limits, names[:1])
    for chunk in batched(names[1:], limits.read):
        await _read_into(ua, read, limits, chunk)
    if read_override is not None:
        limits.read = read_override
    return limits


async def _read_into(
    ua: Any,
    read: Callable[[Any], Awaitable[list[Any]]],
    limits: OperationLimits,
    names: Sequence[str],
) -> None:
    params = ua.ReadParameters()
    params.NodesToRead = [read_value_id(ua, ua.NodeId(_NODES[name], 0)) for name in names]
    try:
        values = await read(params)
    except Exception:  # an old server that refuses the Read: no stated limits
        return
    for name, dv in zip(names, values, strict=False):
        value = dv.Value.Value if dv.Value is not None else None
        bad = dv.StatusCode is not None and dv.StatusCode.value >> 30 >= 2
        if not bad and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            setattr(limits, name, int(value))
