"""What compile_read and compile_write prepare: read plans and checked writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.addresses.opcua import OpcUaAddress
from bifrost.model import Tag


@dataclass(slots=True)
class _ReadPlan:
    tags: tuple[Tag, ...]
    addresses: tuple[OpcUaAddress, ...]
    node_ids: list[Any]  # ua.NodeId, or None for a browse path not resolved yet
    scale: npt.NDArray[np.float64] | None
    offset: npt.NDArray[np.float64] | None
    generation: int = -1  # the connection the browse paths were resolved on
    positions: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    batches: list[Any] = field(default_factory=list)  # ua.ReadParameters
    unresolved: list[tuple[int, int]] = field(default_factory=list)  # (position, status)


@dataclass(frozen=True, slots=True)
class _Write:
    tag: Tag
    address: OpcUaAddress
    value: Any
