"""An in-memory device: values in a dict, faults on demand, for tests and demos.

Address grammar, options, read planning, codec, the device store (the other end of the
connection, in place of a server) and the driver. :mod:`bifrost.testing` is the
user-facing side: ``memory_device(name)`` and the pytest fixtures.

Registered under the ``bifrost.protocols`` entry points for ``memory://``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bifrost.protocols.memory.driver import MemoryDriver

__all__ = ["create_driver"]


def create_driver(url: str, **options: Any) -> MemoryDriver:
    """The entry point's factory: a memory driver for ``url`` (not connected)."""
    from bifrost.protocols.memory.driver import MemoryDriver
    from bifrost.protocols.memory.options import MemoryOptions

    return MemoryDriver(MemoryOptions.from_url(url, **options))
