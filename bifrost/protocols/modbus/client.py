"""pymodbus' blocking client, used only from the connection's worker thread.

Blocking rather than asyncio: a Modbus read plan is a short sequence of round trips,
and asyncio's per-request wake-ups cost more than the requests themselves on a fast
device (see :mod:`bifrost.protocols.worker`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bifrost.exceptions import ConnectionError, TimeoutError
from bifrost.protocols.worker import BlockingWorker

__all__ = ["ModbusClient"]

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class ModbusClient:
    """Owns a blocking pymodbus client; every method runs on the worker thread.

    Parameters
    ----------
    make_client
        Creates the (unconnected) blocking client.
    endpoint
        ``host:port`` or the serial device, for messages.
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
        """Whether the client's socket or serial port is open."""
        client = self._client
        return bool(client is not None and client.connected)

    def connect(self) -> None:
        """Open the connection."""
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

    def request(self, abandon: threading.Event, function: str, *args: Any, **kwargs: Any) -> Any:
        """One request/response round trip; errors translated."""
        BlockingWorker.check(abandon)
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
