"""Address grammars, one module per protocol; pure parsing, no I/O."""

from bifrost.addresses.modbus import ModbusAddress, parse_modbus_address

__all__ = ["ModbusAddress", "parse_modbus_address"]
