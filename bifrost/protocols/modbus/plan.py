"""Modbus read plans: tags grouped per unit and table, merged, split at the protocol's limits.

A plan is built once per tag list with no I/O. The register images of all its requests
are concatenated, and the tags are bucketed per (type, order) so that each bucket decodes
in one NumPy step (see :mod:`bifrost.protocols.modbus.codec`).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, cast, overload

import numpy as np
import numpy.typing as npt

from bifrost.exceptions import AddressError, ConfigurationError
from bifrost.model import ByteOrder, DataType, Tag
from bifrost.planning import Span, coalesce_arrays
from bifrost.protocols.base import parse_tag_address
from bifrost.protocols.modbus import codec
from bifrost.protocols.modbus.address import ModbusAddress, parse_modbus_address
from bifrost.protocols.modbus.options import MAX_BITS, MAX_REGISTERS, ModbusOptions, check_unit
from bifrost.protocols.modbus.pdu import Request, read_request

__all__ = [
    "MAX_BITS",
    "MAX_REGISTERS",
    "READ_FUNCTIONS",
    "DecodeGroup",
    "ReadPlan",
    "RowLayout",
    "compile_read",
    "decode",
    "decode_row",
    "explain",
    "is_bit_table",
    "resolve",
    "row_layout",
    "span_table",
    "span_unit_table",
]

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
    addresses: Sequence[ModbusAddress]
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
    """Plan the requests for ``tags`` and the vectorised decoding of their replies.

    One pass over the tags collects plain numbers (offset, end, request group, decode
    group); merging, layout and decode groups are NumPy steps over them, so a cold plan
    costs about the parsing of its addresses.
    """
    n = len(tags)
    columns = _columns_at_once(tags, options)
    if columns is None:
        columns = _columns_one_by_one(tags, options)
    parsed, offset_arr, end_arr, key_arr, key_names, bucket_arr, buckets = columns
    if options.unreadable and n:
        key_arr, key_names = _fence(key_arr, offset_arr, end_arr, key_names, options.unreadable)
    is_bit_key = np.array([is_bit_table(table) for _, table in key_names], dtype=np.bool_)
    tag_bits = is_bit_key[key_arr] if n else np.zeros(0, dtype=np.bool_)
    spans: list[Span] = []
    for bits, limit, gap in (
        (False, options.max_registers_per_request, options.max_gap_registers),
        (True, options.max_bits_per_request, options.max_gap_bits),
    ):
        indices = np.flatnonzero(tag_bits == bits)
        keys_, starts, stops = key_arr[indices], offset_arr[indices], end_arr[indices]
        if limit < (MAX_BITS if bits else MAX_REGISTERS):
            _check_fits(tags, indices, stops - starts, limit, bits)
        if options.one_request_per_tag:
            merged = _one_per_tag(keys_, starts, stops)
        else:
            merged = coalesce_arrays(keys_, starts, stops, limit, gap)
        for key, start, count, members in merged:
            spans.append(Span(key_names[key], start, count, tuple(indices[members].tolist())))
    return _layout(tuple(tags), parsed, spans, offset_arr, bucket_arr, buckets)


# What a plan needs of each tag, as columns: the parsed addresses (a sequence), offsets,
# ends, request keys (index into key names), decode buckets (index into buckets).
_Columns = tuple[
    Sequence[ModbusAddress],
    npt.NDArray[np.intp],
    npt.NDArray[np.intp],
    npt.NDArray[np.intp],
    list[tuple[int, str]],
    npt.NDArray[np.intp],
    list[tuple[DataType, ByteOrder, int, bool]],
]
_Bucket = tuple[DataType, ByteOrder, int, bool]

# The plain table:offset[:type[:order]][@unit] form of every address at once, matched
# over all of them joined by newlines (lower-cased: the grammar is case-insensitive).
# Any other line (classic references, spaces, errors) falls to the empty alternative and
# goes through the full parser on its own.
_PLAIN_LINES = re.compile(
    r"(?:(co|di|ir|hr):([0-9]{1,5})((?::[a-z0-9\[\]]+){0,2})(?:@([0-9]{1,3}))?|[^\n]*)\n"
)
_TABLES: tuple[str, ...] = ("co", "di", "ir", "hr")
_LAST = 65535


class _Addresses(Sequence[ModbusAddress]):
    """The tags' parsed addresses, parsed again (from the parser's cache) when asked for.

    A plan of many thousand tags needs only their columns; a fallback or a check asks
    for a few addresses.
    """

    __slots__ = ("_tags",)

    def __init__(self, tags: Sequence[Tag]) -> None:
        self._tags = tags

    def __len__(self) -> int:
        return len(self._tags)

    @overload
    def __getitem__(self, index: int) -> ModbusAddress: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ModbusAddress]: ...
    def __getitem__(self, index: int | slice) -> ModbusAddress | Sequence[ModbusAddress]:
        if isinstance(index, slice):
            return [parse_modbus_address(t.address) for t in self._tags[index]]
        return parse_modbus_address(self._tags[index].address)


def _columns_at_once(tags: Sequence[Tag], options: ModbusOptions) -> _Columns | None:
    """The columns of a plan from one regex pass over all addresses, no object per tag.

    None if any address is not a valid one (or its unit id is refused): the tag-by-tag
    pass then raises the error naming the first such tag, exactly as it always has.
    Each distinct table, type and order is parsed once by the full parser.
    """
    n = len(tags)
    if not n:
        return None
    addresses = [t.address for t in tags]
    try:
        lines = _PLAIN_LINES.findall("\n".join(addresses).lower() + "\n")
    except TypeError:  # an address that is not a string: the full parser names it
        return None
    if len(lines) != n:  # an address with a newline in it
        return None
    tables, offset_texts, suffixes, unit_texts = zip(*lines, strict=True)
    kinds: dict[str, int] = {}
    kind_of = [kinds.setdefault(k, len(kinds)) for k in map(operator.add, tables, suffixes)]
    prototypes: list[ModbusAddress] = []
    for key in kinds:
        if not key:
            # Not in the plain form (a classic reference, spaces, an error): rare in a
            # long list, so the whole list goes tag by tag.
            return None
        table, _, suffix = key.partition(":")
        try:
            prototypes.append(parse_modbus_address(f"{table}:0{':' if suffix else ''}{suffix}"))
        except AddressError:
            return None
    kind_arr = np.array(kind_of, dtype=np.intp)
    # Every offset text is 1-5 digits (the regex): NumPy's text parser reads them all.
    offset_arr = np.fromstring(" ".join(offset_texts), dtype=np.intp, sep=" ")
    if len(offset_arr) != n:
        return None
    count_of_kind = np.array([p.count for p in prototypes], dtype=np.intp)
    end_arr = offset_arr + count_of_kind[kind_arr]
    if offset_arr.max() > _LAST or end_arr.max() > _LAST + 1:
        return None
    units: dict[str, int] = {"": options.unit}
    for text in set(unit_texts):
        if text and text not in units:
            unit = int(text)
            if unit > 255:
                return None
            try:
                check_unit(unit, options.allow_any_unit)
            except ConfigurationError:
                return None
            units[text] = unit
    unit_arr = np.array([units[u] for u in unit_texts], dtype=np.intp)
    table_of_kind = np.array([_TABLES.index(p.table) for p in prototypes], dtype=np.intp)
    key_arr, key_names = _request_keys(unit_arr * 4 + table_of_kind[kind_arr])
    buckets: list[_Bucket] = []
    bucket_of_kind = []
    for p in prototypes:
        bucket = (p.dtype, p.order, p.length, p.is_bit)
        if bucket not in buckets:
            buckets.append(bucket)
        bucket_of_kind.append(buckets.index(bucket))
    bucket_arr = np.array(bucket_of_kind, dtype=np.intp)[kind_arr]
    return _Addresses(tags), offset_arr, end_arr, key_arr, key_names, bucket_arr, buckets


def _request_keys(
    codes: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[np.intp], list[tuple[int, str]]]:
    """Request keys numbered in order of first appearance, as the tag-by-tag pass does."""
    unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(unique), dtype=np.intp)
    rank[order] = np.arange(len(unique), dtype=np.intp)
    names = [(int(c) // 4, _TABLES[int(c) % 4]) for c in unique[order].tolist()]
    return rank[inverse.reshape(-1)], names


def _columns_one_by_one(tags: Sequence[Tag], options: ModbusOptions) -> _Columns:
    """The columns of a plan, tag by tag through the full parser (errors name the tag)."""
    parsed: list[ModbusAddress] = []
    offsets: list[int] = []
    ends: list[int] = []
    key_of: list[int] = []
    bucket_of: list[int] = []
    keys: dict[tuple[int, str], int] = {}
    # (table, dtype, order, length) -> (decode group, registers or bits, is a bit)
    # Keyed by the enums' ids: members are singletons, and Enum.__hash__ is Python code.
    shapes: dict[tuple[str, int, int, int], tuple[int, int, bool]] = {}
    buckets: list[_Bucket] = []
    for tag in tags:
        address, unit = resolve(tag, options)
        parsed.append(address)
        shape_key = (address.table, id(address.dtype), id(address.order), address.length)
        shape = shapes.get(shape_key)
        if shape is None:
            bits = address.is_bit
            bucket = (address.dtype, address.order, address.length, bits)
            if bucket not in buckets:
                buckets.append(bucket)
            shape = shapes[shape_key] = (buckets.index(bucket), address.count, bits)
        key = keys.setdefault((unit, address.table), len(keys))
        offset = address.offset
        offsets.append(offset)
        ends.append(offset + shape[1])
        key_of.append(key)
        bucket_of.append(shape[0])
    return (
        parsed,
        np.array(offsets, dtype=np.intp),
        np.array(ends, dtype=np.intp),
        np.array(key_of, dtype=np.intp),
        list(keys),
        np.array(bucket_of, dtype=np.intp),
        buckets,
    )


def _fence(
    keys: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    ends: npt.NDArray[np.intp],
    names: list[tuple[int, str]],
    unreadable: tuple[tuple[str, int, int], ...],
) -> tuple[npt.NDArray[np.intp], list[tuple[int, str]]]:
    """Request keys that also tell apart the stretches between a table's unreadable ranges.

    Tags only merge within one key, so no merged request reaches into a range the
    device refuses. A tag that itself lies (partly) in one gets a key of its own: it is
    read alone, and if the range was not really unreadable (a scan steps over holes at
    its resolution) it still reads.
    """
    zones = np.zeros(len(keys), dtype=np.intp)
    for k, (_, table) in enumerate(names):
        holes = [(first, last) for t, first, last in unreadable if t == table]
        if not holes:
            continue
        firsts = np.array([first for first, _ in holes], dtype=np.intp)  # sorted, disjoint
        lasts = np.array([last for _, last in holes], dtype=np.intp)
        mine = np.flatnonzero(keys == k)
        s, e = starts[mine], ends[mine]
        zone = np.searchsorted(firsts, s, side="right")  # holes starting at or before s
        before = np.maximum(zone - 1, 0)
        after = np.minimum(zone, len(firsts) - 1)
        inside = ((zone > 0) & (lasts[before] >= s)) | ((zone < len(firsts)) & (firsts[after] < e))
        zone[inside] = -1 - mine[inside]
        zones[mine] = zone
    pairs, fenced = np.unique(np.stack([keys, zones], axis=1), axis=0, return_inverse=True)
    return fenced.reshape(-1).astype(np.intp), [names[int(k)] for k in pairs[:, 0]]


def _check_fits(
    tags: Sequence[Tag],
    indices: npt.NDArray[np.intp],
    sizes: npt.NDArray[np.intp],
    limit: int,
    bits: bool,
) -> None:
    # A device's smaller limit can make a single tag too big for any request.
    too_big = np.flatnonzero(sizes > limit)
    if len(too_big):
        tag = tags[int(indices[too_big[0]])]
        unit, option = (
            ("bits", "max_bits_per_request") if bits else ("registers", "max_registers_per_request")
        )
        raise ConfigurationError(
            f"tag {tag.name!r} ({tag.address}) needs {int(sizes[too_big[0]])} {unit}, more "
            f"than {option}={limit} allows in one request; raise the option or shorten the tag"
        )


def _one_per_tag(
    keys: npt.NDArray[np.intp], starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]
) -> list[tuple[int, int, int, npt.NDArray[np.intp]]]:
    """A request per tag, for devices that refuse reads spanning several variables.

    Tags at exactly the same address share their request: the device sees the same read.
    """
    if len(keys) == 0:
        return []
    order = np.lexsort((ends, starts, keys))
    triples = np.stack([keys[order], starts[order], ends[order]], axis=1)
    new = np.ones(len(order), dtype=np.bool_)
    new[1:] = np.any(triples[1:] != triples[:-1], axis=1)
    firsts = np.flatnonzero(new)
    bounds = [*firsts.tolist(), len(order)]
    return [
        (int(triples[a, 0]), int(triples[a, 1]), int(triples[a, 2] - triples[a, 1]), order[a:b])
        for a, b in pairwise(bounds)
    ]


def _layout(
    tags: tuple[Tag, ...],
    parsed: Sequence[ModbusAddress],
    spans: list[Span],
    offsets: npt.NDArray[np.intp],
    bucket_of: npt.NDArray[np.intp],
    buckets: list[tuple[DataType, ByteOrder, int, bool]],
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
        members = np.asarray(span.members, dtype=np.intp)
        start_of_tag[members] = offsets[members] + (base - span.start)
        span_of_tag[members] = s_index
    groups = []
    for code, (dtype, order, length, bits) in enumerate(buckets):
        positions = np.flatnonzero(bucket_of == code)
        groups.append(DecodeGroup(dtype, order, length, bits, positions, start_of_tag[positions]))
    return ReadPlan(
        tags,
        parsed if isinstance(parsed, _Addresses) else tuple(parsed),
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


_Where = slice | npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class RowLayout:
    """How a plan's groups decode into one row of floats (a recording's), fixed per plan.

    ``groups`` pairs each group with where its values go in the row, for 16-bit
    registers read as they are the slice of the register image that holds them (no
    gather), and the values' NumPy type. ``rest`` are the tags no numeric group covers: NaN, as
    :meth:`~bifrost.results.ReadResult.as_float` gives them.
    """

    groups: tuple[tuple[DecodeGroup, _Where, slice | None, np.dtype[Any]], ...]
    rest: npt.NDArray[np.intp]


def _as_slice(index: npt.NDArray[np.intp]) -> _Where:
    # Consecutive indices become a slice: a view to copy from or into, not a gather.
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


def row_layout(plan: ReadPlan) -> RowLayout:
    """The :class:`RowLayout` of ``plan`` (see :func:`decode_row`)."""
    groups = []
    covered = np.zeros(len(plan.tags), dtype=np.bool_)
    for group in plan.groups:
        if group.dtype is DataType.STRING:
            continue
        direct = None
        target = group.dtype.numpy_dtype
        if (
            not group.bits
            and codec.registers_for(group.dtype) == 1
            and target.itemsize == 2
            and not group.order.swap_bytes
        ):
            starts = _as_slice(group.starts)
            direct = starts if isinstance(starts, slice) else None
        groups.append((group, _as_slice(group.positions), direct, target))
        covered[group.positions] = True
    return RowLayout(tuple(groups), np.flatnonzero(~covered))


_BAD = 128  # Quality.BAD: compared every cycle, looked up once


def decode_row(
    layout: RowLayout,
    registers: npt.NDArray[np.uint16],
    bits: npt.NDArray[np.bool_],
    quality: npt.NDArray[np.uint8] | None,
    out: npt.NDArray[np.float64],
) -> None:
    """Decode a read's images into ``out``, one float64 per tag, NaN where bad or not numeric.

    The same values, cast the same way, as ``ReadResult.as_float()`` of the read's
    result; ``quality`` is the read's (one code per tag), or None when the read knows
    every tag's to be good (no value to blank).
    """
    for group, where, direct, target in layout.groups:
        if direct is not None:
            out[where] = registers[direct].view(target)
        else:
            out[where] = decode(group, registers, bits)
    if len(layout.rest):
        out[layout.rest] = np.nan
    if quality is not None:
        bad = quality >= _BAD
        if bad.any():
            out[bad] = np.nan
