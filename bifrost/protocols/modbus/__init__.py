"""Modbus TCP and RTU.

Address grammar, options, read planning, register codec, the driver, and the simulated
plant's Modbus server.

Registered under the ``bifrost.protocols`` entry points for ``modbus://``,
``modbus+tcp://`` and ``modbus+rtu://``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bifrost.protocols.modbus.driver import ModbusDriver

__all__ = ["create_driver"]


def create_driver(url: str, **options: Any) -> ModbusDriver:
    """The entry point's factory: a Modbus driver for ``url`` (not connected)."""
    from bifrost.protocols.modbus.driver import ModbusDriver
    from bifrost.protocols.modbus.options import ModbusOptions

    return ModbusDriver(ModbusOptions.from_url(url, **options))
