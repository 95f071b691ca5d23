"""Read planning: coalesce many small items into few requests under protocol limits.

Pure functions, no I/O. A driver describes each tag as an :class:`Item` (a group key
such as ``(unit, table)``, a start and an end in protocol units: registers, bits or
bytes); :func:`coalesce` sorts each group and merges neighbours while the merged request
stays within ``max_span`` and the hole between them is at most ``max_gap``.

:func:`pack` is the cost-model twin for protocols whose requests carry several items
(S7): whether a hole is worth reading over follows from the relative cost of a request,
an item and a byte, and the merged spans are packed into requests under a byte budget
and an item limit.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "CostModel",
    "Item",
    "Packet",
    "Span",
    "coalesce",
    "coalesce_arrays",
    "gc_paused",
    "pack",
]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off CPython's cyclic garbage collector while a plan builds its objects.

    A cold plan of 60,000 tags makes a Tag per raw address: enough new objects to set
    off full collections, each a walk over the whole heap, which made planning cost
    grow faster than the tag count (10 us per tag at 60,000 against 2 us at 10,000).
    Nothing a plan builds is cyclic garbage; the collector resumes (if it was on) when
    the plan is done, and catches up on its own schedule.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to read: ``[start, end)`` within the address space named by ``key``."""

    key: Hashable
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Span:
    """One request: ``count`` units from ``start`` in ``key``, serving ``members``.

    ``members`` are indices into the item sequence given to :func:`coalesce`.
    """

    key: Hashable
    start: int
    count: int
    members: tuple[int, ...]

    @property
    def end(self) -> int:
        """One past the last unit read."""
        return self.start + self.count


def coalesce(items: Sequence[Item], max_span: int, max_gap: int = 0) -> list[Span]:
    """Merge items into as few spans as the limits allow.

    Parameters
    ----------
    items
        What to read; overlapping and duplicate items are fine.
    max_span
        Largest request, in units (e.g. 125 registers or 2000 bits for Modbus).
    max_gap
        Largest hole, in units, worth reading over to save a request.

    Returns
    -------
    list of Span
        Ordered by key (in first-seen order) and start.

    Raises
    ------
    ValueError
        If an item alone is larger than ``max_span`` or empty.
    """
    if max_span < 1 or max_gap < 0:
        raise ValueError("max_span must be >= 1 and max_gap >= 0")
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        size = item.end - item.start
        if size < 1 or size > max_span:
            raise ValueError(
                f"item {index} spans {size} units; each must be 1..{max_span} to fit a request"
            )
        groups[item.key].append(index)

    spans: list[Span] = []
    for key, indices in groups.items():
        indices.sort(key=lambda i: (items[i].start, items[i].end))
        start = items[indices[0]].start
        end = items[indices[0]].end
        members = [indices[0]]
        for i in indices[1:]:
            item = items[i]
            new_end = max(end, item.end)
            if item.start - end <= max_gap and new_end - start <= max_span:
                end = new_end
                members.append(i)
                continue
            spans.append(Span(key, start, end - start, tuple(members)))
            start, end, members = item.start, item.end, [i]
        spans.append(Span(key, start, end - start, tuple(members)))
    return spans


def coalesce_arrays(
    keys: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    ends: npt.NDArray[np.intp],
    max_span: int,
    max_gap: int = 0,
) -> list[tuple[int, int, int, npt.NDArray[np.intp]]]:
    """:func:`coalesce` for items given as arrays, for plans of many thousand tags.

    The same merge (items sorted by key, start and end; a neighbour joins while the hole
    is at most ``max_gap`` and the span at most ``max_span``), with one NumPy sort in
    place of an :class:`Item` per tag and a keyed sort. Item sizes are the caller's to
    check.

    Returns
    -------
    list of (key, start, count, members)
        Ordered by key then start; ``members`` index the input arrays, in sorted order.
    """
    import numpy as np

    if max_span < 1 or max_gap < 0:
        raise ValueError("max_span must be >= 1 and max_gap >= 0")
    if len(keys) == 0:
        return []
    order = np.lexsort((ends, starts, keys))
    sorted_keys, sorted_starts, sorted_ends = keys[order], starts[order], ends[order]
    bounds = _merge_at_once(sorted_keys, sorted_starts, sorted_ends, max_span, max_gap)
    if bounds is None:
        bounds = _merge_one_by_one(sorted_keys, sorted_starts, sorted_ends, max_span, max_gap)
    firsts, stops = bounds
    return [
        (key, start, stop - start, order[first:last])
        for key, start, stop, first, last in zip(
            sorted_keys[firsts].tolist(),
            sorted_starts[firsts].tolist(),
            stops.tolist(),
            firsts.tolist(),
            [*firsts[1:].tolist(), len(order)],
            strict=True,
        )
    ]


# Each merge gives the index (into the sorted items) of each span's first item and the
# span's end.
_Bounds = tuple["npt.NDArray[np.intp]", "npt.NDArray[np.int64]"]


def _merge_one_by_one(
    keys: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    ends: npt.NDArray[np.intp],
    max_span: int,
    max_gap: int,
) -> _Bounds:
    """The merge item by item, over sorted items."""
    import numpy as np

    all_keys, all_starts, all_ends = keys.tolist(), starts.tolist(), ends.tolist()
    firsts, stops = [0], []
    key, start, end = all_keys[0], all_starts[0], all_ends[0]
    for i in range(1, len(all_keys)):
        item_key, item_start, item_end = all_keys[i], all_starts[i], all_ends[i]
        new_end = end if end > item_end else item_end
        if item_key == key and item_start - end <= max_gap and new_end - start <= max_span:
            end = new_end
            continue
        firsts.append(i)
        stops.append(end)
        key, start, end = item_key, item_start, item_end
    stops.append(end)
    return np.array(firsts, dtype=np.intp), np.array(stops, dtype=np.int64)


def _merge_at_once(
    keys: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    ends: npt.NDArray[np.intp],
    max_span: int,
    max_gap: int,
) -> _Bounds | None:
    """The same merge as :func:`_merge_one_by_one`, with NumPy steps and one jump per span.

    Holes wider than ``max_gap`` cut the items into runs at once; a run that fits
    ``max_span`` is one span, a longer one is cut where the running maximum of the ends
    first passes its span's start plus ``max_span`` (a binary search, not a step per
    item). That running maximum is each span's end: at such a cut the item's own end
    is the new maximum, so nothing from the span before reaches past it. Only after an
    item longer than ``max_span`` (which callers' checks normally refuse) can it be
    otherwise: None then, and the caller merges item by item.
    """
    import numpy as np

    low = int(starts.min())
    # Keys set apart by more than any span and hole, so one running maximum serves them
    # all and a key change always reads as a hole too wide to merge over.
    stride = int(ends.max()) - low + max_span + max_gap + 1
    lift = (keys.astype(np.int64) - int(keys[0])) * stride - low
    lifted_starts = starts + lift
    lifted_ends = ends + lift
    reach = np.maximum.accumulate(lifted_ends)
    run_firsts = np.flatnonzero(lifted_starts[1:] - reach[:-1] > max_gap) + 1
    run_firsts = np.concatenate(([0], run_firsts))
    run_stops = np.concatenate((run_firsts[1:], [len(keys)]))
    fits = reach[run_stops - 1] - lifted_starts[run_firsts] <= max_span
    if fits.all():
        return run_firsts, reach[run_stops - 1] - lift[run_firsts]
    firsts: list[int] = []
    for run_first, run_stop, run_fits in zip(
        run_firsts.tolist(), run_stops.tolist(), fits.tolist(), strict=True
    ):
        first = run_first
        if run_fits:
            firsts.append(first)
            continue
        while first < run_stop:
            firsts.append(first)
            cut = int(reach.searchsorted(lifted_starts[first] + max_span, side="right"))
            first = min(max(cut, first + 1), run_stop)
            if first < run_stop and reach[first - 1] > lifted_ends[first]:
                return None
    span_firsts = np.array(firsts, dtype=np.intp)
    lasts = np.concatenate((span_firsts[1:], [len(keys)])) - 1
    return span_firsts, reach[lasts] - lift[span_firsts]


@dataclass(frozen=True, slots=True)
class CostModel:
    """Relative costs of reading, in units of one request's round trip.

    Attributes
    ----------
    request
        Fixed cost of one request/reply exchange (latency, device scan, framing).
    item
        Extra cost of each item (address) in a multi-item request.
    byte
        Cost of each byte carried (transfer and copying).
    """

    request: float = 1.0
    item: float = 0.2
    byte: float = 0.0005

    def max_gap(self, budget: int, max_items: int, item_overhead: int) -> int:
        """Largest hole, in bytes, that is cheaper to read over than to skip.

        Skipping a hole costs an extra item: its own cost, its share of a request's item
        slots and its framing bytes. Reading over it costs its bytes, each of which also
        uses a share of a request's byte budget. Both are amortised per request.
        """
        per_byte = self.byte + self.request / budget
        per_item = self.item + self.request / max_items + item_overhead * per_byte
        return int(per_item / per_byte)


@dataclass(frozen=True, slots=True)
class Packet:
    """One request carrying one or more spans (one multi-item read, or a plain read)."""

    spans: tuple[Span, ...]


def pack(
    items: Sequence[Item],
    *,
    max_span: int,
    budget: int,
    max_items: int,
    item_overhead: int = 0,
    align: int = 1,
    cost: CostModel | None = None,
) -> list[Packet]:
    """Merge items into spans by a cost model and pack the spans into requests.

    Items of one key are sorted and merged while the merged span stays within
    ``max_span`` and the hole is below :meth:`CostModel.max_gap`. Spans are then packed
    first-fit by decreasing size into requests of at most ``max_items`` spans whose
    reply fits ``budget`` bytes, each span taking ``item_overhead`` plus its size rounded
    up to ``align``. A span that fills a request alone becomes a plain one-item read.

    Parameters
    ----------
    items
        What to read, in bytes; overlapping and duplicate items are fine.
    max_span
        Largest span a one-item request can carry.
    budget
        Reply bytes available per request for items and their framing.
    max_items
        Most items one request may carry.
    item_overhead
        Framing bytes per item in the reply.
    align
        Items are padded to a multiple of this many bytes (S7: 2).
    cost
        Relative costs; the defaults suit a PLC on a LAN.

    Returns
    -------
    list of Packet
        Span ``members`` index into ``items``.

    Raises
    ------
    ValueError
        For an empty item, an item larger than ``max_span``, or limits that cannot hold
        one item.
    """
    if max_items < 1 or max_span < 1 or budget < item_overhead + max_span:
        raise ValueError("limits must allow one item of max_span bytes per request")
    model = cost or CostModel()
    gap = model.max_gap(budget, max_items, item_overhead)
    spans = coalesce(items, max_span, gap)
    order = sorted(range(len(spans)), key=lambda i: (-spans[i].count, i))
    bins: list[list[int]] = []
    used: list[int] = []
    for index in order:
        size = item_overhead + -(-spans[index].count // align) * align
        for b, members in enumerate(bins):
            if len(members) < max_items and used[b] + size <= budget:
                members.append(index)
                used[b] += size
                break
        else:
            bins.append([index])
            used.append(size)
    # Requests go out in address order: easier to follow in a capture, same cost.
    ordered = sorted((sorted(members) for members in bins), key=lambda m: m[0])
    return [Packet(tuple(spans[i] for i in members)) for members in ordered]
