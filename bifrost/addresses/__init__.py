"""Address grammars, one module per protocol; pure parsing, no I/O."""

from bifrost.addresses.modbus import ModbusAddress, parse_modbus_address
from bifrost.addresses.s7 import S7Address, parse_s7_address

__all__ = ["ModbusAddress", "S7Address", "parse_modbus_address", "parse_s7_address"]
