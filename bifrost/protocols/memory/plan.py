"""Memory read plans: one request per read, the tags bucketed per type for decoding.

A plan is built once per tag list with no I/O: addresses parsed, each distinct key
looked up once per read however many tags name it, and the tags grouped per type so
that each group becomes one typed column.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost import values
from bifrost.exceptions import ProtocolError, ValueOutOfRange
from bifrost.model import DataType, Quality, Tag
from bifrost.protocols.base import ReadResult, parse_tag_address
from bifrost.protocols.memory import codec
from bifrost.protocols.memory.address import MemoryAddress, parse_memory_address

__all__ = ["DecodeGroup", "ReadPlan", "compile_read", "decode", "explain", "resolve"]


@dataclass(frozen=True, slots=True)
class DecodeGroup:
    """Tags of one type, decoded into one column."""

    dtype: DataType
    positions: npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What one read looks up and how the answers become columns."""

    tags: tuple[Tag, ...]
    addresses: tuple[MemoryAddress, ...]
    keys: tuple[str, ...]
    key_of_tag: npt.NDArray[np.intp]
    groups: tuple[DecodeGroup, ...]


def resolve(tag: Tag) -> MemoryAddress:
    """A tag's parsed address."""
    return parse_tag_address(tag, parse_memory_address, "memory")


def compile_read(tags: Sequence[Tag]) -> ReadPlan:
    """Plan the read of ``tags``; a bad address raises before anything is sent."""
    addresses = tuple(resolve(tag) for tag in tags)
    keys: dict[str, int] = {}
    key_of_tag = np.array([keys.setdefault(a.key, len(keys)) for a in addresses], dtype=np.intp)
    by_type: dict[DataType, list[int]] = defaultdict(list)
    for position, address in enumerate(addresses):
        by_type[address.dtype].append(position)
    groups = tuple(
        DecodeGroup(dtype, np.asarray(positions, dtype=np.intp))
        for dtype, positions in by_type.items()
    )
    return ReadPlan(tuple(tags), addresses, tuple(keys), key_of_tag, groups)


def explain(plan: ReadPlan, device: str) -> list[dict[str, Any]]:
    """The one request a read sends."""
    return [{"request": "read", "device": device, "keys": len(plan.keys), "tags": len(plan.tags)}]


def decode(
    plan: ReadPlan,
    answers: Sequence[tuple[bool, Any, Quality]],
    device: str,
    timestamp_ns: int,
    started: float,
) -> ReadResult:
    """The columnar result of the device's ``(present, value, quality)`` answers per key.

    A missing key or a value the tag's type cannot hold reads as ``BAD_CONFIG``; a bad
    quality set on the device keeps the value but adds an error. Errors are one per
    cause, naming its tags.
    """
    n = len(plan.tags)
    quality = np.zeros(n, dtype=np.uint8)
    problems: dict[tuple[int, str], list[str]] = defaultdict(list)
    columns = []
    for group in plan.groups:
        kept: list[int] = []
        cells: list[Any] = []
        for position in group.positions.tolist():
            tag, address = plan.tags[position], plan.addresses[position]
            present, raw, code = answers[plan.key_of_tag[position]]
            if not present:
                quality[position] = Quality.BAD_CONFIG
                problems[(Quality.BAD_CONFIG, f"holds no value for key {address.key!r}")].append(
                    tag.name
                )
                continue
            try:
                cell = values.check(tag, raw, address.dtype, address.length)
            except ValueOutOfRange:
                quality[position] = Quality.BAD_CONFIG
                reason = (
                    f"holds {raw!r} under key {address.key!r}, "
                    f"which {address.type_name} cannot hold"
                )
                problems[(Quality.BAD_CONFIG, reason)].append(tag.name)
                continue
            quality[position] = code
            if code >= Quality.BAD:
                problems[(code, f"reports {Quality(code).name} for key {address.key!r}")].append(
                    tag.name
                )
            kept.append(position)
            cells.append(cell)
        if kept:
            columns.append((np.asarray(kept, dtype=np.intp), codec.column(cells, group.dtype)))
    errors = [
        ProtocolError(
            f"the memory device {device!r} {reason} (tag{'s' if len(names) > 1 else ''} "
            + ", ".join(repr(name) for name in names)
            + ")",
            code=int(code),
            tags=names,
        )
        for (code, reason), names in problems.items()
    ]
    return ReadResult(
        plan.tags,
        columns,
        quality,
        np.full(n, timestamp_ns, dtype=np.int64),
        errors,
        started=started,
    )
