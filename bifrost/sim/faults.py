"""Faults a replayed recording can show its clients: dropouts, frozen values, noise, latency.

Each fault applies while the replay's position in the recording (seconds from its first
row) is in ``[start, end)``; a looping replay shows it again on every pass.

>>> faults = [Dropout(start=5, end=8), Frozen("tank.level", start=10, end=20),
...           Noise("reactor.temperature", amplitude=0.5, seed=1), Slow(latency=0.2)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bifrost.exceptions import ConfigurationError, value_repr

__all__ = ["Dropout", "Fault", "Frozen", "Noise", "Slow", "check_faults"]


def _seconds(value: Any, what: str, fault: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{fault}: {what} must be a number of seconds, got {value_repr(value)}"
        )
    number = float(value)
    if math.isnan(number) or number < 0:
        raise ConfigurationError(f"{fault}: {what} must be >= 0 seconds, got {value_repr(value)}")
    return number


def _names(tags: str | Iterable[str] | None, fault: str) -> tuple[str, ...] | None:
    if tags is None:
        return None
    names = (tags,) if isinstance(tags, str) else tuple(tags)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigurationError(f"{fault}: tags must be tag names, got {value_repr(tags)}")
    return names


@dataclass(frozen=True)
class Fault:
    """What every fault has: the span of the recording it covers, in seconds."""

    start: float = field(default=0.0, kw_only=True)
    end: float = field(default=math.inf, kw_only=True)

    def __post_init__(self) -> None:
        kind = type(self).__name__
        start = _seconds(self.start, "start", kind)
        end = _seconds(self.end, "end", kind)
        if end <= start:
            raise ConfigurationError(f"{kind}: end ({end:g} s) must be after start ({start:g} s)")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def active(self, position: float) -> bool:
        """Whether the fault applies at ``position`` seconds into the recording."""
        return self.start <= position < self.end

    def covers(self, name: str) -> bool:
        """Whether the fault applies to the tag ``name`` (faults of the device: every tag)."""
        names = getattr(self, "tags", None)
        return names is None or name in names


@dataclass(frozen=True)
class Dropout(Fault):
    """The device stops answering: requests get no reply (clients time out)."""


@dataclass(frozen=True)
class Slow(Fault):
    """Every reply is held back ``latency`` seconds (a slow device or a congested link)."""

    latency: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        latency = _seconds(self.latency, "latency", "Slow")
        if not math.isfinite(latency):
            raise ConfigurationError(f"Slow: latency must be finite, got {self.latency!r}")
        object.__setattr__(self, "latency", latency)


@dataclass(frozen=True)
class Frozen(Fault):
    """The tags (None: all) keep the value they had at ``start`` until ``end`` (stuck sensor)."""

    tags: str | Sequence[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "tags", _names(self.tags, "Frozen"))


@dataclass(frozen=True)
class Noise(Fault):
    """Uniform noise in ``[-amplitude, +amplitude]`` on float tags (None: every float tag).

    The noise of a row depends only on ``seed`` and the row, so two reads of one row see
    the same value and two replays with the same seed the same noise.
    """

    tags: str | Sequence[str] | None = None
    amplitude: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        amplitude = _seconds(self.amplitude, "amplitude", "Noise")
        if not math.isfinite(amplitude) or amplitude == 0:
            raise ConfigurationError(
                f"Noise: amplitude must be finite and > 0, got {self.amplitude!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigurationError(f"Noise: seed must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "amplitude", amplitude)
        object.__setattr__(self, "tags", _names(self.tags, "Noise"))


def check_faults(faults: Iterable[Fault] | Fault | None, names: Sequence[str]) -> tuple[Fault, ...]:
    """The faults as a tuple, each one's tags checked against the recording's ``names``."""
    if faults is None:
        return ()
    given = (faults,) if isinstance(faults, Fault) else tuple(faults)
    known = set(names)
    for fault in given:
        if not isinstance(fault, Fault):
            raise ConfigurationError(
                "faults are bifrost.sim.Dropout, Frozen, Noise or Slow objects, got "
                f"{value_repr(fault)}"
            )
        unknown = [n for n in getattr(fault, "tags", None) or () if n not in known]
        if unknown:
            raise ConfigurationError(
                f"{type(fault).__name__}: the recording has no tag {unknown[0]!r}; it has "
                f"{', '.join(names[:8])}{' ...' if len(names) > 8 else ''}"
            )
    return given
