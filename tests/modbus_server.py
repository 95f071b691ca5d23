"""A real pymodbus server on a free loopback port, in its own thread, for driver tests.

Layout (unit 1; unit 2 also exists with the same layout):
coils 0-199, discrete inputs 0-199, holding registers 0-1999, input registers 0-1999.
Holding registers 3000-3009 exist too, so 2000-2999 is a hole that answers exception 2.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from bifrost._accepts import close_listener

FC = {"co": 5, "di": 2, "hr": 6, "ir": 4}


def _device(unit: int) -> SimDevice:
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, count=200, values=False, datatype=DataType.BITS)],
            [SimData(0, count=200, values=False, datatype=DataType.BITS)],
            [
                SimData(0, count=2000, values=0, datatype=DataType.REGISTERS),
                SimData(3000, count=10, values=0, datatype=DataType.REGISTERS),
            ],
            [SimData(0, count=2000, values=0, datatype=DataType.REGISTERS)],
        ),
    )


class ModbusTestServer:
    """Start with :meth:`start`; stop with :meth:`stop` (also a context manager)."""

    def __init__(
        self, serial_port: str | None = None, port: int = 0, units: Sequence[int] = (1, 2)
    ) -> None:
        self.serial_port = serial_port
        self.port = port
        self.units = tuple(units)  # other unit ids get no answer at all
        self.connections = 0  # TCP connections accepted
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None
        self.requests = 0  # requests received, counted by the server's PDU trace

    def _trace(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            self.requests += 1
        return pdu

    def _connected(self, connect: bool) -> None:
        if connect:
            self.connections += 1

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> ModbusTestServer:
        self._thread.start()

        async def start() -> None:
            devices = [_device(unit) for unit in self.units]
            traces: dict[str, Any] = {"trace_pdu": self._trace, "ignore_missing_devices": True}
            if self.serial_port:
                self._server = ModbusSerialServer(
                    devices, port=self.serial_port, baudrate=19200, **traces
                )
            else:
                self._server = ModbusTcpServer(
                    devices,
                    address=("127.0.0.1", self.port),
                    trace_connect=self._connected,
                    **traces,
                )
            await self._server.serve_forever(background=True)
            if not self.serial_port:
                self.port = self._server.transport.sockets[0].getsockname()[1]

        self._run(start())
        return self

    @property
    def url(self) -> str:
        return f"modbus://127.0.0.1:{self.port}"

    def set(self, table: str, address: int, values: Sequence[Any], unit: int = 1) -> None:
        async def put() -> None:
            await self._server.context.async_setValues(unit, FC[table], address, list(values))

        self._run(put())

    def get(self, table: str, address: int, count: int, unit: int = 1) -> list[Any]:
        fc = {"co": 1, "di": 2, "hr": 3, "ir": 4}[table]

        async def fetch() -> Any:
            return await self._server.context.async_getValues(unit, fc, address, count)

        return list(self._run(fetch()))

    def stop(self) -> None:
        server = self._server
        if server is not None:

            async def shutdown() -> None:
                await close_listener(server.transport)  # then shutdown closes the late ones
                await server.shutdown()

            self._run(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> ModbusTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
