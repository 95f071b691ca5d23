"""Siemens S7 (classic, ISO-on-TCP).

Address grammar, options, PDU-sized read planning, byte codec, the snap7 driver, TIA
Portal tag imports, and the simulated plant's S7 server.

Registered under the ``bifrost.protocols`` entry points for ``s7://``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bifrost.protocols.s7.driver import S7Driver

__all__ = ["create_driver"]


def create_driver(url: str, **options: Any) -> S7Driver:
    """The entry point's factory: an S7 driver for ``url`` (not connected)."""
    from bifrost.protocols.s7.driver import S7Driver
    from bifrost.protocols.s7.options import S7Options

    return S7Driver(S7Options.from_url(url, **options))
