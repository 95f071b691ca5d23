"""HistoryRead: raw and processed values, continuation points followed to the end.

One HistoryRead call per MaxNodesPerHistoryReadData nodes; the nodes still holding a
continuation point are asked again (and only they) until none is left, ``max_values``
is reached (the points left are released), or a bounded number of pages has been read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bifrost.exceptions import ConfigurationError, ProtocolError
from bifrost.protocols.opcua.limits import batched
from bifrost.protocols.opcua.nodes import ns_datetime

__all__ = ["AGGREGATES", "NodeHistory", "aggregate_id", "history_details", "read_node_history"]

# Friendly names -> OPC UA Part 13 aggregate functions (ns=0 AggregateFunction_<name>).
AGGREGATES = {
    "average": "Average",
    "mean": "Average",
    "time_average": "TimeAverage",
    "minimum": "Minimum",
    "min": "Minimum",
    "maximum": "Maximum",
    "max": "Maximum",
    "count": "Count",
    "start": "Start",
    "first": "Start",
    "end": "End",
    "last": "End",
    "range": "Range",
    "total": "Total",
    "interpolative": "Interpolative",
    "std": "StandardDeviationSample",
    "percent_good": "PercentGood",
    "worst_quality": "WorstQuality",
}
_MAX_PAGES = 100_000  # HistoryRead calls one read may make (a server that never ends)

_Call = Callable[[str, Any], Awaitable[Any]]


@dataclass(slots=True)
class NodeHistory:
    """What one node's history read gave: DataValues, or the bad StatusCode that ended it."""

    values: list[Any] = field(default_factory=list)
    status: int = 0


def aggregate_id(ua: Any, name: str) -> Any:
    """The NodeId of an aggregate given by friendly name (``"average"``) or OPC UA name."""
    if not isinstance(name, str):
        raise ConfigurationError(f"aggregate must be a name such as 'average', got {name!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    official = AGGREGATES.get(key)
    if official is None:  # an OPC UA name as written in Part 13 ("StandardDeviationPopulation")
        official = next(
            (n for n in dir(ua.ObjectIds) if n.lower() == f"aggregatefunction_{key}"), ""
        ).removeprefix("AggregateFunction_")
    if not official:
        names = ", ".join(sorted(set(AGGREGATES)))
        raise ConfigurationError(
            f"unknown aggregate {name!r}; use one of {names} or an OPC UA Part 13 name"
        )
    return ua.NodeId(getattr(ua.ObjectIds, f"AggregateFunction_{official}"), 0)


def history_details(
    ua: Any,
    start_ns: int,
    end_ns: int,
    *,
    per_request: int,
    aggregate: str | None,
    interval_s: float | None,
) -> Any:
    """ReadRawModifiedDetails, or ReadProcessedDetails for an aggregate (no I/O)."""
    if aggregate is None:
        details = ua.ReadRawModifiedDetails()
        details.IsReadModified = False
        details.NumValuesPerNode = per_request
        details.ReturnBounds = False
    else:
        if interval_s is None or not interval_s > 0:
            raise ConfigurationError(f"interval must be positive, got {interval_s!r}")
        details = ua.ReadProcessedDetails()
        details.ProcessingInterval = interval_s * 1000.0
        details.AggregateType = [aggregate_id(ua, aggregate)]
        details.AggregateConfiguration = ua.AggregateConfiguration()
        details.AggregateConfiguration.UseServerCapabilitiesDefaults = True
    details.StartTime = ns_datetime(start_ns)
    details.EndTime = ns_datetime(end_ns)
    return details


async def read_node_history(
    ua: Any,
    call: _Call,
    client: Any,
    node_ids: Sequence[Any],
    details: Any,
    *,
    max_values: int | None,
    limit: int | None,
) -> list[NodeHistory]:
    """Every node's values, following continuation points; one entry per node."""
    out = [NodeHistory() for _ in node_ids]
    pending: dict[int, bytes | None] = dict.fromkeys(range(len(node_ids)))
    for _ in range(_MAX_PAGES):
        if not pending:
            return out
        done: dict[int, bytes | None] = {}
        for part in batched(list(pending), limit):
            params = ua.HistoryReadParameters()
            params.HistoryReadDetails = details
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            params.ReleaseContinuationPoints = False
            params.NodesToRead = [_value_id(ua, node_ids[i], pending[i]) for i in part]
            results = await call("reading history", client.uaclient.history_read(params))
            if len(results) != len(part):
                raise _mismatch(len(part), len(results))
            for i, result in zip(part, results, strict=True):
                code = result.StatusCode.value if result.StatusCode is not None else 0
                if code >> 30 >= 2:
                    out[i].status = code
                    continue
                data = result.HistoryData
                out[i].values.extend(getattr(data, "DataValues", None) or [])
                point = result.ContinuationPoint or None
                full = max_values is not None and len(out[i].values) >= max_values
                if full:
                    del out[i].values[max_values:]
                if point is not None and point == pending[i] and not out[i].values:
                    out[i].status = 0x80000000  # Bad: the server repeats itself
                    continue
                done[i] = point if not full else None
                if full and point is not None:
                    await _release(ua, call, client, details, node_ids[i], point)
        pending = {i: point for i, point in done.items() if point is not None}
    raise ConfigurationError(
        f"history read stopped after {_MAX_PAGES} pages; ask for a shorter span or max_values"
    )


def _value_id(ua: Any, node_id: Any, point: bytes | None) -> Any:
    item = ua.HistoryReadValueId()
    item.NodeId = node_id
    item.ContinuationPoint = point
    return item


async def _release(
    ua: Any, call: _Call, client: Any, details: Any, node: Any, point: bytes
) -> None:
    # The server holds resources for a continuation point until it is released.
    params = ua.HistoryReadParameters()
    params.HistoryReadDetails = details
    params.ReleaseContinuationPoints = True
    params.NodesToRead = [_value_id(ua, node, point)]
    await call("releasing a history continuation point", client.uaclient.history_read(params))


def _mismatch(asked: int, got: int) -> Exception:
    return ProtocolError(f"HistoryRead for {asked} nodes was answered with {got} results")
