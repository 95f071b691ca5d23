"""A pymodbus server that breaks the rules as real devices do, logging what it receives."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from modbus_server import ModbusTestServer
from pymodbus.pdu import ExceptionResponse

BUSY, ILLEGAL_VALUE = 6, 3


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    at: float  # monotonic
    unit: int
    function: int
    address: int
    count: int


class QuirkyServer(ModbusTestServer):
    """A pymodbus server that answers "busy" ``busy`` times and refuses large reads.

    A read of more than ``max_registers`` registers is answered with exception 3
    (ILLEGAL DATA VALUE), as libmodbus-style devices do.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.busy = 0
        self.max_registers: int | None = None
        self.seen: list[Seen] = []
        self.connected_at: list[float] = []
        self._current: Any = None

    def _connected(self, connect: bool) -> None:
        super()._connected(connect)
        if connect:
            self.connected_at.append(time.monotonic())

    def _trace(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            self.requests += 1
            self._current = pdu
            self.seen.append(
                Seen(
                    time.monotonic(),
                    pdu.dev_id,
                    pdu.function_code,
                    getattr(pdu, "address", -1),
                    getattr(pdu, "count", -1),
                )
            )
            return pdu
        request = self._current
        limit = self.max_registers
        code = None
        if limit is not None and request.function_code in (3, 4) and request.count > limit:
            code = ILLEGAL_VALUE
        elif self.busy > 0:
            self.busy -= 1
            code = BUSY
        if code is None:
            return pdu
        return ExceptionResponse(
            request.function_code, code, device_id=pdu.dev_id, transaction=pdu.transaction_id
        )

    def reset(self) -> None:
        self.seen.clear()
        self.connected_at.clear()
        self.requests = 0
        self.connections = 0
