"""Modbus read plans: tags grouped per unit and table, merged, split at the protocol's limits.

A plan is built once per tag list with no I/O. The register images of all its requests
are concatenated, and the tags are bucketed per (type, order) so that each bucket decodes
in one NumPy step (see :mod:`bifrost.protocols.modbus.codec`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from bifrost.exceptions import ConfigurationError
from bifrost.model import ByteOrder, DataType, Tag
from bifrost.planning import Item, Span, coalesce
from bifrost.protocols.base import parse_tag_address
from bifrost.protocols.modbus import codec
from bifrost.protocols.modbus.address import ModbusAddress, parse_modbus_address
from bifrost.protocols.modbus.options import ModbusOptions, check_unit
from bifrost.protocols.modbus.pdu import Request, read_request

__all__ = [
    "MAX_BITS",
    "MAX_REGISTERS",
    "READ_FUNCTIONS",
    "DecodeGroup",
    "ReadPlan",
    "compile_read",
    "decode",
    "explain",
    "is_bit_table",
    "resolve",
    "span_table",
    "span_unit_table",
]

MAX_REGISTERS = 125
MAX_BITS = 2000
READ_FUNCTIONS = {
    "co": "read_coils",
    "di": "read_discrete_inputs",
    "ir": "read_input_registers",
    "hr": "read_holding_registers",
}


@dataclass(frozen=True, slots=True)
class DecodeGroup:
    """Tags decoded together: one type and order, gathered from one image."""

    dtype: DataType
    order: ByteOrder
    length: int
    bits: bool
    positions: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The requests of one tag list and where each tag's data lands."""

    tags: tuple[Tag, ...]
    addresses: tuple[ModbusAddress, ...]
    spans: tuple[Span, ...]
    span_base: tuple[int, ...]  # where each span's data starts in its image
    register_size: int
    bit_size: int
    groups: tuple[DecodeGroup, ...]
    span_of_tag: npt.NDArray[np.intp]
    requests: tuple[Request, ...] = ()  # one per span, built once: reads send them as is


def is_bit_table(table: str) -> bool:
    """Coils and discrete inputs hold bits; the register tables hold 16-bit words."""
    return table in ("co", "di")


def resolve(tag: Tag, options: ModbusOptions) -> tuple[ModbusAddress, int]:
    """A tag's parsed address and the unit id it is read from."""
    address = parse_tag_address(tag, parse_modbus_address, "Modbus")
    unit = options.unit if address.unit is None else address.unit
    if address.unit is not None:
        try:
            check_unit(unit, options.allow_any_unit)
        except ConfigurationError as exc:
            raise ConfigurationError(f"tag {tag.name!r} ({tag.address}): {exc}") from None
    return address, unit


def compile_read(tags: Sequence[Tag], options: ModbusOptions) -> ReadPlan:
    """Plan the requests for ``tags`` and the vectorised decoding of their replies."""
    parsed = [resolve(tag, options) for tag in tags]
    items = [Item((unit, a.table), a.offset, a.end) for a, unit in parsed]
    bit_items = [i for i, (a, _) in enumerate(parsed) if a.is_bit]
    reg_items = [i for i, (a, _) in enumerate(parsed) if not a.is_bit]
    spans: list[Span] = []
    for indices, limit, gap in (
        (reg_items, MAX_REGISTERS, options.max_gap_registers),
        (bit_items, MAX_BITS, options.max_gap_bits),
    ):
        for span in coalesce([items[i] for i in indices], limit, gap):
            members = tuple(indices[m] for m in span.members)
            spans.append(Span(span.key, span.start, span.count, members))
    return _layout(tuple(tags), parsed, spans)


def _layout(
    tags: tuple[Tag, ...], parsed: Sequence[tuple[ModbusAddress, int]], spans: list[Span]
) -> ReadPlan:
    span_base: list[int] = []
    sizes = {"reg": 0, "bit": 0}
    start_of_tag = np.zeros(len(tags), dtype=np.intp)
    span_of_tag = np.zeros(len(tags), dtype=np.intp)
    for s_index, span in enumerate(spans):
        kind = "bit" if is_bit_table(span_table(span)) else "reg"
        base = sizes[kind]
        span_base.append(base)
        sizes[kind] += span.count
        for member in span.members:
            start_of_tag[member] = base + parsed[member][0].offset - span.start
            span_of_tag[member] = s_index
    buckets: dict[tuple[DataType, ByteOrder, int, bool], list[int]] = defaultdict(list)
    for i, (address, _) in enumerate(parsed):
        key = (address.dtype, address.order, address.length, address.is_bit)
        buckets[key].append(i)
    groups = []
    for (dtype, order, length, bits), members in buckets.items():
        positions = np.asarray(members, dtype=np.intp)
        groups.append(DecodeGroup(dtype, order, length, bits, positions, start_of_tag[positions]))
    return ReadPlan(
        tags,
        tuple(address for address, _ in parsed),
        tuple(spans),
        tuple(span_base),
        sizes["reg"],
        sizes["bit"],
        tuple(groups),
        span_of_tag,
        tuple(read_request(*span_unit_table(s), s.start, s.count) for s in spans),
    )


def span_unit_table(span: Span) -> tuple[int, str]:
    """The unit id and table a span reads from."""
    return cast(tuple[int, str], span.key)


def span_table(span: Span) -> str:
    """The table a span reads from."""
    return span_unit_table(span)[1]


def explain(plan: ReadPlan) -> list[dict[str, Any]]:
    """One row per Modbus request: unit, function, first address, count, tags served."""
    rows = []
    for span in plan.spans:
        unit, table = span_unit_table(span)
        rows.append(
            {
                "request": READ_FUNCTIONS[table],
                "unit": unit,
                "start": f"{table}:{span.start}",
                "count": span.count,
                "tags": len(span.members),
            }
        )
    return rows


def decode(
    group: DecodeGroup, registers: npt.NDArray[np.uint16], bits: npt.NDArray[np.bool_]
) -> npt.NDArray[Any]:
    """The raw values of one group's tags from the read's register and bit images."""
    if group.bits:
        return bits[group.starts]
    if group.dtype is DataType.STRING:
        return codec.decode_strings(registers, group.starts, group.length, group.order)
    return codec.decode_registers(registers, group.starts, group.dtype, group.order)
