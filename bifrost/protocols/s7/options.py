"""S7 connection settings from a URL's query and keyword arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bifrost.exceptions import ConfigurationError
from bifrost.planning import CostModel
from bifrost.protocols.options import convert, flag, query
from bifrost.secrets import redact_url

__all__ = ["CONNECTION_TYPES", "S7Options"]

# snap7's connection types: the first byte of the remote TSAP.
CONNECTION_TYPES = {"pg": 1, "op": 2, "basic": 3}


@dataclass(frozen=True, slots=True)
class S7Options:
    """Connection settings, from the URL and keyword arguments.

    ``item_cost`` and ``byte_cost`` are the planner's costs relative to one request
    (see :class:`bifrost.planning.CostModel`).

    ``connection_type`` is the CPU connection resource used: ``"op"`` (an HMI's, the
    default), ``"pg"`` (a programming device's, as TIA Portal uses: on CPUs with one
    free PG connection bifrost and TIA Portal take it from each other) or ``"basic"``
    (S7 basic communication).
    """

    host: str = "127.0.0.1"
    port: int = 102
    rack: int = 0
    slot: int = 1
    timeout: float = 3.0
    item_cost: float = 0.2
    byte_cost: float = 0.0005
    multi_item: bool = True
    connection_type: str = "op"

    @property
    def endpoint(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def cost(self) -> CostModel:
        """The planner's cost model."""
        return CostModel(request=1.0, item=self.item_cost, byte=self.byte_cost)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S7Options:
        """Parse ``s7://host:port?rack=0&slot=1``; keyword arguments override the query.

        Raises
        ------
        ConfigurationError
            For another scheme, unknown options or values no PLC accepts.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "s7":
            raise ConfigurationError(f"{redact_url(url)!r} is not an s7:// URL")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"{redact_url(url)!r}: {exc}") from None
        values: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": port if port is not None else 102,
        }
        converters: dict[str, Callable[[Any], Any]] = {
            "rack": int,
            "slot": int,
            "timeout": float,
            "item_cost": float,
            "byte_cost": float,
            "multi_item": flag,
            "connection_type": lambda v: str(v).strip().lower(),
        }
        settings = {**query(parts.query), **kwargs}
        values.update(convert(settings, converters, "S7"))
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ConfigurationError for values no PLC accepts."""
        # The remote TSAP packs the rack into 3 bits and the slot into 5.
        if not 0 <= self.rack <= 7:
            raise ConfigurationError(f"S7 rack {self.rack} is outside 0-7")
        if not 0 <= self.slot <= 31:
            raise ConfigurationError(f"S7 slot {self.slot} is outside 0-31")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port {self.port} is outside 1-65535")
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout}")
        if self.item_cost < 0 or self.byte_cost < 0:
            raise ConfigurationError("item_cost and byte_cost must be >= 0")
        if self.connection_type not in CONNECTION_TYPES:
            raise ConfigurationError(
                f"S7 connection_type={self.connection_type!r} is not one of "
                f"{', '.join(repr(k) for k in CONNECTION_TYPES)}"
            )
