"""The simulated plant's historian: asyncua's HistoryRead service over a compact store.

asyncua's server runs HistoryRead through its ``HistoryManager`` and a storage backend.
Its in-memory backend keeps one DataValue object per sample, trims with ``list.pop(0)``,
returns no continuation point when ``NumValuesPerNode`` cuts a read short, and the
manager answers ReadProcessedDetails with BadNotImplemented. The plant needs all three,
so :class:`PlantHistory` is asyncua's manager with a ring buffer of the plant's scalar
variables (one row per sample, float64), index-based continuation points and the
processed reads of OPC UA Part 13 that bifrost maps (Average, Minimum, Maximum, Count,
Start, End, Range).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from asyncua import ua as _ua
from asyncua.server.history import HistoryManager

from bifrost.protocols.opcua.nodes import datetime_ns, ns_datetime

__all__ = ["PlantHistory"]

ua: Any = _ua
_CALCULATED = 0x0401  # Good, InfoType DataValue, HistorianCalculated
_AGGREGATES = {
    ua.ObjectIds.AggregateFunction_Average: "average",
    ua.ObjectIds.AggregateFunction_Minimum: "minimum",
    ua.ObjectIds.AggregateFunction_Maximum: "maximum",
    ua.ObjectIds.AggregateFunction_Count: "count",
    ua.ObjectIds.AggregateFunction_Start: "start",
    ua.ObjectIds.AggregateFunction_End: "end",
    ua.ObjectIds.AggregateFunction_Range: "range",
}


def _ns(value: datetime | None) -> int | None:
    if value is None or value <= ua.get_win_epoch():  # "not given" in OPC UA
        return None
    return datetime_ns(value)


class PlantHistory(HistoryManager):
    """HistoryRead for the plant's scalar variables, sampled every ``period_s``.

    Parameters
    ----------
    iserver
        The asyncua internal server.
    node_ids, vtypes
        The historized variables and their variant types (one column each).
    capacity
        Rows kept (the oldest are overwritten): 36,000 = one hour at 10 Hz.
    """

    def __init__(
        self,
        iserver: Any,
        node_ids: Sequence[Any],
        vtypes: Sequence[Any],
        *,
        period_s: float = 0.1,
        capacity: int = 36_000,
    ) -> None:
        super().__init__(iserver)
        self.columns = {node_id: j for j, node_id in enumerate(node_ids)}
        self._vtypes = list(vtypes)
        self.period_ns = int(period_s * 1e9)
        """Shortest time between two stored rows (0: every publish is stored)."""
        self._times = np.zeros(capacity, dtype=np.int64)
        self._values = np.zeros((capacity, len(node_ids)), dtype=np.float64)
        self._written = 0  # rows ever written; row n lives at n % capacity
        self.page_size = 10_000
        """Most values of one node in one answer (a continuation point for the rest)."""

    def due(self, now_ns: int) -> bool:
        """Whether a sample taken at ``now_ns`` is stored (at most one per period)."""
        if not self._written:
            return True
        last = int(self._times[(self._written - 1) % len(self._times)])
        return now_ns - last >= self.period_ns

    def sample(self, now_ns: int, values: Sequence[float]) -> None:
        """Store one row of the variables' values (call when :meth:`due`)."""
        row = self._written % len(self._times)
        self._times[row] = now_ns
        self._values[row] = values
        self._written += 1

    def _span(self) -> tuple[int, npt.NDArray[np.int64]]:
        """The first kept row number and the kept rows' times, oldest first."""
        capacity = len(self._times)
        first = max(0, self._written - capacity)
        rows = np.arange(first, self._written) % capacity
        return first, self._times[rows]

    async def read_history(self, params: Any) -> list[Any]:
        """HistoryRead: raw and processed data of the historized variables."""
        details = params.HistoryReadDetails
        results = []
        for item in params.NodesToRead:
            result = ua.HistoryReadResult()
            if params.ReleaseContinuationPoints:
                results.append(result)  # stateless: nothing is held per continuation
                continue
            column = self.columns.get(item.NodeId)
            if column is None:
                result.StatusCode = ua.StatusCode(ua.StatusCodes.BadHistoryOperationUnsupported)
            elif isinstance(details, ua.ReadRawModifiedDetails) and not details.IsReadModified:
                self._raw(details, item, column, result)
            elif isinstance(details, ua.ReadProcessedDetails):
                self._processed(details, item, column, result)
            else:
                result.StatusCode = ua.StatusCode(ua.StatusCodes.BadHistoryOperationUnsupported)
            results.append(result)
        return results

    def _continued_from(self, item: Any, result: Any) -> int | None:
        if not item.ContinuationPoint:
            return 0
        try:
            (offset,) = struct.unpack("<Q", item.ContinuationPoint)
        except struct.error:
            offset = -1
        if offset < 0:
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadContinuationPointInvalid)
            return None
        return int(offset)

    def _raw(self, details: Any, item: Any, column: int, result: Any) -> None:
        skip = self._continued_from(item, result)
        if skip is None:
            return
        first, times = self._span()
        start, end = _ns(details.StartTime), _ns(details.EndTime)
        low = 0 if start is None else int(np.searchsorted(times, start, "left"))
        high = len(times) if end is None else int(np.searchsorted(times, end, "right"))
        rows = np.arange(low, high)[skip:]
        limit = min(details.NumValuesPerNode or self.page_size, self.page_size)
        page = rows[:limit]
        capacity = len(self._times)
        vtype = self._vtypes[column]
        values = []
        for k in page.tolist():
            at = (first + k) % capacity
            stamp = ns_datetime(int(self._times[at]))
            variant = ua.Variant(_typed(self._values[at, column], vtype), vtype)
            values.append(ua.DataValue(variant, SourceTimestamp=stamp, ServerTimestamp=stamp))
        result.HistoryData = ua.HistoryData()
        result.HistoryData.DataValues = values
        if len(rows) > limit:
            result.ContinuationPoint = struct.pack("<Q", skip + limit)

    def _processed(self, details: Any, item: Any, column: int, result: Any) -> None:
        kinds = details.AggregateType or []
        kind = _AGGREGATES.get(kinds[0].Identifier) if len(kinds) == 1 else None
        if kind is None or kinds[0].NamespaceIndex != 0:
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadAggregateNotSupported)
            return
        start, end = _ns(details.StartTime), _ns(details.EndTime)
        interval_ns = int(details.ProcessingInterval * 1e6)
        if start is None or end is None or interval_ns <= 0 or end <= start:
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            return
        skip = self._continued_from(item, result)
        if skip is None:
            return
        first, times = self._span()
        capacity = len(self._times)
        edges = np.arange(start, end, interval_ns, dtype=np.int64)
        vtype = self._vtypes[column]
        values = []
        for t in edges[skip : skip + self.page_size].tolist():
            low = int(np.searchsorted(times, t, "left"))
            high = int(np.searchsorted(times, min(t + interval_ns, end), "left"))
            stamp = ns_datetime(t)
            if high <= low:
                values.append(
                    ua.DataValue(
                        StatusCode=ua.StatusCode(ua.StatusCodes.BadNoData), SourceTimestamp=stamp
                    )
                )
                continue
            data = self._values[(first + np.arange(low, high)) % capacity, column]
            value, variant_type, code = _aggregate(kind, data, vtype)
            values.append(
                ua.DataValue(
                    ua.Variant(value, variant_type),
                    StatusCode=ua.StatusCode(code),
                    SourceTimestamp=stamp,
                    ServerTimestamp=stamp,
                )
            )
        result.HistoryData = ua.HistoryData()
        result.HistoryData.DataValues = values
        if len(edges) > skip + self.page_size:
            result.ContinuationPoint = struct.pack("<Q", skip + self.page_size)


def _typed(value: float, vtype: Any) -> Any:
    if vtype is ua.VariantType.Boolean:
        return bool(value)
    if vtype in (ua.VariantType.Float, ua.VariantType.Double):
        return float(value)
    return int(value)


def _aggregate(kind: str, data: npt.NDArray[np.float64], vtype: Any) -> tuple[Any, Any, int]:
    """One interval's value, its variant type and StatusCode (Part 13's definitions)."""
    if kind == "count":
        return len(data), ua.VariantType.UInt32, _CALCULATED
    if kind == "average":
        return float(data.mean()), ua.VariantType.Double, _CALCULATED
    if kind == "range":
        return float(data.max() - data.min()), ua.VariantType.Double, _CALCULATED
    picked = {
        "minimum": data.min(),
        "maximum": data.max(),
        "start": data[0],
        "end": data[-1],
    }[kind]
    # Raw values keep the variable's type.
    return _typed(float(picked), vtype), vtype, 0
