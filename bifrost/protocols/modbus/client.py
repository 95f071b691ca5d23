"""Modbus RTU through pymodbus' blocking serial client, on the connection's worker thread.

pymodbus checks the RTU frame (CRC, unit id) and drops bytes waiting before a request;
what it does not check is that the decoded reply answers the request, so the function
code, the number of registers or bits and a write's echo are checked here before
anything is used. Modbus TCP does not come through here: see
:mod:`bifrost.protocols.modbus.transport`.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bifrost.exceptions import ConfigurationError, ConnectionError, TimeoutError
from bifrost.protocols.modbus.pdu import (
    DEVICE_IDENTIFICATION,
    WRITE_COIL,
    WRITE_REGISTERS,
    Reply,
    ReplyMismatch,
    Request,
    echo_mismatch,
)

__all__ = ["LineSettings", "SerialClient", "SerialLine", "attach_line", "release_line"]

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
        self.settle = 0.0  # seconds to wait after opening the port (pause_after_connect)
        self.last_reply = 0.0  # monotonic time the last exchange ended (for pauses)

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
        if self.settle:
            time.sleep(self.settle)

    def disconnect(self) -> None:
        """Close the client if open."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def exchange(self, request: Request, deadline: float, timeout: float | None = None) -> Reply:
        """One round trip; the reply checked against ``request``.

        pymodbus bounds each round trip by its own ``timeout``, so ``deadline`` serves
        only the driver's choice of whether a busy retry still fits. ``timeout`` is the
        asking connection's, where connections with different timeouts share the line.
        """
        if timeout is not None and timeout != self.timeout:
            self._use_timeout(timeout)
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

    def _use_timeout(self, timeout: float) -> None:
        # pymodbus reads its one timeout from comm_params on every receive.
        self.timeout = timeout
        client = self._client
        if client is not None:
            client.comm_params.timeout_connect = timeout
            if client.socket is not None:
                client.socket.timeout = timeout

    def _call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        self.connect()
        try:
            return getattr(self._client, function)(*args, **kwargs)
        except Exception as exc:
            text = str(exc) or type(exc).__name__
            if "no response" in text.lower() or "timeout" in text.lower():
                # One silent slave is no reason to close the port the others on the
                # line answer through; pymodbus discards a late reply before the next
                # request, and its frame check drops a reply from another unit.
                unit = kwargs.get("device_id")
                raise TimeoutError(
                    f"no answer from unit {unit} on the Modbus line {self.endpoint} within "
                    f"{self.timeout:g} s"
                ) from None
            self.disconnect()
            raise ConnectionError(
                f"lost the connection to the Modbus device at {self.endpoint}: {text}"
            ) from None
        finally:
            self.last_reply = time.monotonic()


@dataclass(frozen=True, slots=True)
class LineSettings:
    """What every connection sharing one serial line must agree on."""

    port: str
    baudrate: int
    parity: str
    stopbits: int
    bytesize: int

    def describe(self) -> str:
        """E.g. ``19200 8N1``."""
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


class SerialLine:
    """One serial port, shared by every connection to a unit on it (RS-485 multi-drop).

    One pymodbus client (the port opened once: pymodbus opens it exclusively) and one
    worker thread, whose queue is the line's lock: requests to different units never
    interleave on the wire.
    """

    def __init__(self, settings: LineSettings, make_client: Callable[[], Any], timeout: float):
        from bifrost.protocols.worker import BlockingWorker

        self.settings = settings
        self.worker = BlockingWorker(f"bifrost-modbus-{settings.port}")
        self.client = SerialClient(make_client, settings.port, timeout)
        self.users = 0


_lines: dict[str, SerialLine] = {}
_lines_lock = threading.Lock()


def _line_key(port: str) -> str:
    return os.path.realpath(port) if not port.startswith(("socket:", "rfc2217:")) else port


def attach_line(
    settings: LineSettings, make_client: Callable[[], Any], timeout: float, settle: float
) -> SerialLine:
    """The line for ``settings.port``, opened by the first connection to it.

    Raises
    ------
    ConfigurationError
        If the line is in use with other serial settings (one line has one speed).
    """
    key = _line_key(settings.port)
    with _lines_lock:
        line = _lines.get(key)
        if line is None:
            line = _lines[key] = SerialLine(settings, make_client, timeout)
        elif line.settings.describe() != settings.describe():
            raise ConfigurationError(
                f"the serial line {settings.port} is in use at {line.settings.describe()} by "
                f"another connection; every unit on one line needs the same settings, "
                f"not {settings.describe()}"
            )
        line.users += 1
        line.client.settle = max(line.client.settle, settle)
        return line


async def release_line(line: SerialLine, timeout: float) -> None:
    """One connection is done with the line; the last one closes the port and the thread."""
    with _lines_lock:
        line.users -= 1
        last = line.users <= 0
        key = _line_key(line.settings.port)
        if last and _lines.get(key) is line:
            del _lines[key]
    if last:
        await line.worker.shutdown(line.client.disconnect, timeout)


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
