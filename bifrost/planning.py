"""Read planning: coalesce many small items into few requests under protocol limits.

Pure functions, no I/O. A driver describes each tag as an :class:`Item` (a group key
such as ``(unit, table)``, a start and an end in protocol units: registers, bits or
bytes); :func:`coalesce` sorts each group and merges neighbours while the merged request
stays within ``max_span`` and the hole between them is at most ``max_gap``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

__all__ = ["Item", "Span", "coalesce"]


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
