"""pymodbus' blocking client on one dedicated thread per connection.

A Modbus read plan is a short sequence of request/response round trips. Run as one job
on a worker thread with the blocking client, it costs one thread hop per user call and
the lowest latency per round trip; asyncio's per-request wake-ups cost more than the
requests themselves on a fast device. The event loop never blocks, and because every
call to one device goes through its single worker, requests never interleave on the
wire (the Modbus servers we meet mishandle several requests in flight).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bifrost.exceptions import BifrostError, ConnectionError, TimeoutError

__all__ = ["Abandoned", "ModbusWorker"]

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

T = TypeVar("T")


class Abandoned(BifrostError):
    """The caller gave up (cancelled); the job stops before its next request."""


class ModbusWorker:
    """Owns a blocking pymodbus client and the thread that uses it.

    Parameters
    ----------
    make_client
        Creates the (unconnected) blocking client; called on the worker thread.
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
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def connected(self) -> bool:
        """Whether the client's socket or serial port is open."""
        client = self._client
        return bool(client is not None and client.connected)

    # -- running jobs ---------------------------------------------------------------------
    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """Run ``job(abandon, *args)`` on the worker thread and await its result.

        If the awaiting task is cancelled, ``abandon`` is set so that the job stops
        before its next request; a request already on the wire finishes within the
        client's timeout.
        """
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="bifrost-modbus"
            )
        abandon = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, job, abandon, *args)
        try:
            return await future
        except asyncio.CancelledError:
            abandon.set()
            raise

    async def shutdown(self) -> None:
        """Close the client on its thread and stop the thread (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, self.disconnect)
        finally:
            # The worker is idle now, so joining it takes no time.
            executor.shutdown(wait=True)

    # -- on the worker thread ---------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection (worker thread)."""
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
        """Close the client if open (worker thread)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def request(self, abandon: threading.Event, function: str, *args: Any, **kwargs: Any) -> Any:
        """One request/response round trip (worker thread); errors translated."""
        if abandon.is_set():
            raise Abandoned("the call was cancelled")
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
