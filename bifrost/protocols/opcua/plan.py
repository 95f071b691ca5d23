"""What compile_read and compile_write prepare: read plans and checked writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.model import Tag
from bifrost.protocols.opcua.address import OpcUaAddress

__all__ = ["OpcUaWrite", "ReadPlan"]


@dataclass(slots=True)
class ReadPlan:
    """A tag list's node ids, resolved browse paths and Read batches."""

    tags: tuple[Tag, ...]
    addresses: tuple[OpcUaAddress, ...]
    node_ids: list[Any]  # ua.NodeId, or None for a browse path not resolved yet
    generation: int = -1  # the connection the browse paths were resolved on
    positions: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    batches: list[Any] = field(default_factory=list)  # ua.ReadParameters
    unresolved: list[tuple[int, int]] = field(default_factory=list)  # (position, status)


@dataclass(frozen=True, slots=True)
class OpcUaWrite:
    """One value to write, checked for its kind (its type is checked against the node)."""

    tag: Tag
    address: OpcUaAddress
    value: Any
