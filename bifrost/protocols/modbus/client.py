"""Modbus RTU through pymodbus' blocking serial client, on the connection's worker thread.

pymodbus checks the RTU frame (CRC, unit id) and drops bytes waiting before a request;
what it does not check is that the decoded reply answers the request, so the function
code, the number of registers or bits and a write's echo are checked here before
anything is used. Modbus TCP does not come through here: see
:mod:`bifrost.protocols.modbus.transport`.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from bifrost.exceptions import ConnectionError, TimeoutError
from bifrost.protocols.modbus.pdu import (
    DEVICE_IDENTIFICATION,
    WRITE_COIL,
    WRITE_REGISTERS,
    Reply,
    ReplyMismatch,
    Request,
    echo_mismatch,
)

__all__ = ["SerialClient"]

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_READS = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
}


class SerialClient:
    """Owns a blocking pymodbus serial client; every method runs on the worker thread.

    Parameters
    ----------
    make_client
        Creates the (unconnected) blocking client.
    endpoint
        The serial device, for messages.
    timeout
        Seconds per request, for messages (the client enforces it).
    """

    def __init__(self, make_client: Callable[[], Any], endpoint: str, timeout: float) -> None:
        self._make_client = make_client
        self.endpoint = endpoint
        self.timeout = timeout
        self._client: Any = None

    @property
    def connected(self) -> bool:
        """Whether the serial port is open."""
        client = self._client
        return bool(client is not None and client.connected)

    def connect(self) -> None:
        """Open the serial port."""
        if self.connected:
            return
        self.disconnect()
        client = self._make_client()
        try:
            ok = client.connect()
        except Exception as exc:  # pymodbus and OS errors end here, translated
            client.close()
            raise ConnectionError(
                f"could not connect to the Modbus device at {self.endpoint}: {exc}"
            ) from None
        if not ok:
            client.close()
            raise ConnectionError(
                f"could not connect to the Modbus device at {self.endpoint} (refused or "
                f"unreachable within {self.timeout:g} s); is the device on and the port right?"
            )
        self._client = client

    def disconnect(self) -> None:
        """Close the client if open."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def exchange(self, request: Request, deadline: float) -> Reply:
        """One round trip; the reply checked against ``request``.

        pymodbus bounds each round trip by its own ``timeout``, so ``deadline`` serves
        only the driver's choice of whether a busy retry still fits.
        """
        if request.function in _READS:
            response = self._call(
                _READS[request.function],
                request.address,
                count=request.count,
                device_id=request.unit,
            )
        elif request.function == WRITE_COIL:
            response = self._call(
                "write_coil", request.address, bool(request.values[0]), device_id=request.unit
            )
        elif request.function == WRITE_REGISTERS:
            response = self._call(
                "write_registers", request.address, list(request.values), device_id=request.unit
            )
        else:
            raise ValueError(f"no RTU call for function code {request.function}")
        return _checked(request, response)

    def identify(self, unit: int, deadline: float) -> dict[int, Any]:
        """FC 43/14 basic identification objects (empty if the device refuses)."""
        response = self._call("read_device_information", read_code=1, device_id=unit)
        if response.isError() or response.function_code != DEVICE_IDENTIFICATION:
            return {}
        return dict(getattr(response, "information", {}))

    def _call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        self.connect()
        try:
            return getattr(self._client, function)(*args, **kwargs)
        except Exception as exc:
            self.disconnect()
            text = str(exc) or type(exc).__name__
            if "no response" in text.lower() or "timeout" in text.lower():
                raise TimeoutError(
                    f"no answer from the Modbus device at {self.endpoint} within {self.timeout:g} s"
                ) from None
            raise ConnectionError(
                f"lost the connection to the Modbus device at {self.endpoint}: {text}"
            ) from None


def _checked(request: Request, response: Any) -> Reply:
    function = int(response.function_code)
    if response.isError():
        if function & 0x7F != request.function:
            raise ReplyMismatch(
                f"an exception reply to function code {function & 0x7F}, "
                f"the request was function code {request.function}"
            )
        return Reply(int(getattr(response, "exception_code", 0)))
    if function != request.function:
        raise ReplyMismatch(f"function code {function} in the reply, expected {request.function}")
    if request.function in (1, 2):
        # pymodbus unpacks whole bytes: 8 bits for each byte the device sent.
        bits = list(response.bits)
        expected = 8 * ((request.count + 7) // 8)
        if len(bits) != expected:
            raise ReplyMismatch(
                f"{len(bits) // 8} data bytes, expected {expected // 8} for {request.count} bits"
            )
        packed = np.packbits(np.asarray(bits, dtype=np.bool_), bitorder="little")
        return Reply(None, packed.tobytes())
    if request.function in (3, 4):
        registers = list(response.registers)
        if len(registers) != request.count:
            raise ReplyMismatch(
                f"{len(registers)} register{'s' if len(registers) != 1 else ''} in the reply, "
                f"expected {request.count}"
            )
        return Reply(None, struct.pack(f">{len(registers)}H", *registers))
    address = int(response.address)
    if request.function == WRITE_COIL:
        echoed, sent, what = int(bool(response.bits[0])), request.values[0], "coil value"
    else:
        echoed, sent, what = int(response.count), request.count, "quantity"
    if address != request.address or echoed != sent:
        raise ReplyMismatch(echo_mismatch((address, request.address), (echoed, sent), what))
    return Reply(None)
