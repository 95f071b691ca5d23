"""S7 read plans: tags grouped by area and data block, packed into PDU-sized requests.

Planning uses :func:`bifrost.planning.pack`: tags are merged across holes that a cost
model (per request, per item, per byte) says are cheaper to read over than to skip,
split at the negotiated PDU size, and small spans are packed into multi-item requests
(at most 20 items) while large ones go alone as plain area reads. The requests depend on
the PDU size, so a plan is laid out on first use for each PDU size and keeps the layout.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from bifrost.model import DataType, Tag
from bifrost.planning import Item, Packet, Span, pack
from bifrost.protocols.base import parse_tag_address
from bifrost.protocols.s7.address import S7Address, parse_s7_address
from bifrost.protocols.s7.options import S7Options

__all__ = [
    "MAX_ITEMS",
    "DecodeGroup",
    "Layout",
    "ReadPlan",
    "area_name",
    "compile_read",
    "explain",
    "is_s7_address",
    "layout",
    "resolve",
]

MAX_ITEMS = 20
"""Most items one S7 multi-item read carries (the protocol's limit, as in snap7)."""
REPLY_HEADER = 14  # S7 ack-data header (12) + function and item count (2)
ITEM_HEADER = 4  # return code, transport size, bit length
ADDRESS_SPEC = 12  # one item's address specification in a request
PDU_BEFORE_CONNECT = 480  # what explain() assumes before a PLC has negotiated one
_ADDRESS_START = re.compile(r"\s*%?(DB\d+\.DB[XBWD]|[MIEQA][XBWD]?\d)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DecodeGroup:
    """Tags decoded together: one S7 type gathered from the byte image."""

    s7type: str
    dtype: DataType
    size: int
    length: int
    positions: npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Layout:
    """A plan bound to one PDU size: the requests and where each tag lands in the image."""

    packets: tuple[Packet, ...]
    span_base: dict[Span, int]
    size: int
    starts: npt.NDArray[np.intp]  # image index of each tag's first byte


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """A tag list's addresses, decoding groups and one layout per PDU size seen."""

    tags: tuple[Tag, ...]
    addresses: tuple[S7Address, ...]
    items: tuple[Item, ...]
    groups: tuple[DecodeGroup, ...]
    bits: npt.NDArray[np.uint8]
    layouts: dict[int, Layout] = field(default_factory=dict, compare=False)


def is_s7_address(text: str) -> bool:
    """Whether ``text`` starts like an S7 address (``DB1.DBD4``, ``MW10``, ``I0.0``...)."""
    return _ADDRESS_START.match(text) is not None


def resolve(tag: Tag) -> S7Address:
    """A tag's parsed address."""
    return parse_tag_address(tag, parse_s7_address, "S7")


def compile_read(tags: Sequence[Tag]) -> ReadPlan:
    """Validate the addresses and prepare the vectorised decoding (no I/O)."""
    addresses = tuple(resolve(tag) for tag in tags)
    items = tuple(Item((a.area, a.db), a.offset, a.end) for a in addresses)
    buckets: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, a in enumerate(addresses):
        buckets[(a.s7type, a.length)].append(i)
    groups = []
    for (s7type, length), members in buckets.items():
        first = addresses[members[0]]
        positions = np.asarray(members, dtype=np.intp)
        groups.append(DecodeGroup(s7type, first.dtype, first.size, length, positions))
    bits = np.array([a.bit for a in addresses], dtype=np.uint8)
    return ReadPlan(tuple(tags), addresses, items, tuple(groups), bits)


def _limits(pdu: int, multi_item: bool) -> dict[str, int]:
    return {
        "max_span": pdu - REPLY_HEADER - ITEM_HEADER,
        "budget": pdu - REPLY_HEADER,
        "max_items": min(MAX_ITEMS, (pdu - REPLY_HEADER) // ADDRESS_SPEC) if multi_item else 1,
    }


def layout(plan: ReadPlan, pdu: int, options: S7Options) -> Layout:
    """The requests of ``plan`` for a PDU size (cached in the plan)."""
    cached = plan.layouts.get(pdu)
    if cached is not None:
        return cached
    packets = pack(
        plan.items,
        **_limits(pdu, options.multi_item),
        item_overhead=ITEM_HEADER,
        align=2,
        cost=options.cost,
    )
    span_base: dict[Span, int] = {}
    starts = np.zeros(len(plan.items), dtype=np.intp)
    size = 0
    for packet in packets:
        for span in packet.spans:
            span_base[span] = size
            for m in span.members:
                starts[m] = size + plan.items[m].start - span.start
            size += span.count
    laid_out = Layout(tuple(packets), span_base, size, starts)
    plan.layouts[pdu] = laid_out
    return laid_out


def explain(plan: ReadPlan, pdu: int, options: S7Options) -> list[dict[str, Any]]:
    """One row per S7 request at a PDU size."""
    rows = []
    for packet in layout(plan, pdu, options).packets:
        rows.append(
            {
                "request": "read_multi_vars" if len(packet.spans) > 1 else "read_area",
                "items": len(packet.spans),
                "ranges": ", ".join(
                    f"{area_name(span.key)}@{span.start}+{span.count}" for span in packet.spans
                ),
                "bytes": sum(span.count for span in packet.spans),
                "tags": sum(len(span.members) for span in packet.spans),
            }
        )
    return rows


def area_name(key: Any) -> str:
    """A span key (area, db number) the way S7 engineers write areas."""
    area, number = cast(tuple[str, int], key)
    return f"DB{number}" if area == "DB" else area
