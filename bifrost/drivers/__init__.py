"""Protocol drivers, chosen by URL scheme."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bifrost.drivers.base import Driver, ReadResult
from bifrost.exceptions import ConfigurationError

__all__ = ["Driver", "ReadResult", "driver_for_url"]

_SCHEMES = {
    "modbus": "modbus",
    "modbus+tcp": "modbus",
    "modbus+rtu": "modbus",
    "opc.tcp": "opcua",
    "s7": "s7",
}


def driver_for_url(url: str, **options: Any) -> Driver:
    """Create (without connecting) the driver for ``url``.

    Raises
    ------
    ConfigurationError
        For an unknown scheme or invalid options.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"{url!r} is not a device URL; expected e.g. 'modbus://127.0.0.1:502', "
            "'modbus+rtu:///dev/ttyUSB0', 's7://host' or 'opc.tcp://host:4840'"
        )
    scheme = urlsplit(url).scheme.lower()
    kind = _SCHEMES.get(scheme)
    if kind == "modbus":
        from bifrost.drivers.modbus import ModbusDriver, ModbusOptions

        return ModbusDriver(ModbusOptions.from_url(url, **options))
    if kind == "s7":
        from bifrost.drivers.s7 import S7Driver, S7Options

        return S7Driver(S7Options.from_url(url, **options))
    if kind == "opcua":
        from bifrost.drivers.opcua import OpcUaDriver, OpcUaOptions

        return OpcUaDriver(OpcUaOptions.from_url(url, **options))
    known = ", ".join(sorted(_SCHEMES))
    raise ConfigurationError(f"unsupported URL scheme {scheme!r} in {url!r}; known: {known}")
