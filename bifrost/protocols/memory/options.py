"""Memory connection settings from a URL's query and keyword arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bifrost.exceptions import ConfigurationError
from bifrost.protocols.options import convert, query

__all__ = ["NAME_RE", "MemoryOptions", "check_name"]

# What fits the host part of a URL unchanged: urlsplit would lower-case or reject more.
NAME_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")


def check_name(name: str) -> None:
    """Raise ConfigurationError unless ``name`` can be a memory device's name."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigurationError(
            f"memory device name {name!r} is invalid; use letters, digits, '_', '.', '-'"
        )


@dataclass(frozen=True, slots=True)
class MemoryOptions:
    """Connection settings, from the URL and keyword arguments.

    ``timeout`` bounds each request: a device whose latency is longer times out, as a
    stalled real device would.
    """

    name: str
    timeout: float = 3.0

    @property
    def endpoint(self) -> str:
        """The device's URL, ``memory://name``."""
        return f"memory://{self.name}"

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MemoryOptions:
        """Parse ``memory://name?timeout=0.5``; keyword arguments override the query.

        Raises
        ------
        ConfigurationError
            For another scheme, a missing or invalid name, a path, or unknown options.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "memory":
            raise ConfigurationError(f"{url!r} is not a memory:// URL")
        if not parts.netloc:
            raise ConfigurationError(f"{url!r}: a memory URL names its device: memory://name")
        if parts.path not in ("", "/"):
            raise ConfigurationError(f"{url!r}: a memory URL has no path, just memory://name")
        check_name(parts.netloc)
        settings = {**query(parts.query), **kwargs}
        values: dict[str, Any] = {"name": parts.netloc}
        values.update(convert(settings, {"timeout": float}, "memory"))
        options = cls(**values)
        if not options.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {options.timeout}")
        return options
