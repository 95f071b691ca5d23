"""The memory driver: a connection to a :class:`~bifrost.protocols.memory.device.MemoryDevice`.

It behaves like the network drivers where the layers above can tell: a request that
fails drops the connection and the next one reconnects (as Modbus' client does), a
device slower than ``timeout`` times out, the device's errors arrive as bifrost's
exceptions or as bad quality. All of it runs on the event loop: no thread, no socket.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from bifrost import values
from bifrost.clock import wall_ns
from bifrost.exceptions import (
    BifrostError,
    ConnectionError,
    ProtocolError,
    TimeoutError,
    WriteNotAllowed,
)
from bifrost.model import Quality, Tag
from bifrost.protocols.base import Driver, ReadResult
from bifrost.protocols.memory import codec
from bifrost.protocols.memory.address import PREFIX
from bifrost.protocols.memory.device import CallKind, MemoryDevice, ReadOnlyKey, get_device
from bifrost.protocols.memory.options import MemoryOptions
from bifrost.protocols.memory.plan import ReadPlan, compile_read, decode, explain, resolve

__all__ = ["MemoryDriver", "MemoryWrite"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MemoryWrite:
    """One value to store, checked and converted to its tag's type."""

    tag: Tag
    key: str
    value: Any


class MemoryDriver(Driver):
    """Driver for ``memory://name``: reads and writes the device of that name."""

    protocol: ClassVar[str] = "memory"
    library = "bifrost memory driver"

    def __init__(self, options: MemoryOptions) -> None:
        self.options = options
        self._device: MemoryDevice | None = None
        self._session = 0

    @property
    def endpoint(self) -> str:
        """``memory://name``."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the session with the device still stands."""
        device = self._device
        return device is not None and device.alive(self._session)

    # -- transport ------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open a session with the device (created, empty, if none has this name)."""
        self._open()

    def _open(self) -> MemoryDevice:
        device = get_device(self.options.name)
        try:
            self._session = device.accept()
        except builtins.ConnectionRefusedError:
            raise ConnectionError(
                f"could not connect to {self.endpoint}: the device is disconnected "
                "(device.reconnect() brings it back)"
            ) from None
        self._device = device
        return device

    def _ensure_connected(self) -> MemoryDevice:
        # Like Modbus' client: a dropped connection is reopened by the next request.
        device = self._device
        if device is not None and device.alive(self._session):
            return device
        return self._open()

    async def close(self) -> None:
        """End the session (idempotent)."""
        self._session = 0

    async def _request(self, device: MemoryDevice, kind: CallKind, work: Callable[[], T]) -> T:
        timeout = self.options.timeout
        try:
            async with asyncio.timeout(timeout):
                return await device.serve(self._session, kind, work)
        except builtins.TimeoutError as exc:
            # A request that failed on the wire leaves the connection unusable, as a
            # network driver's does: the next request reconnects.
            self._session = 0
            if isinstance(exc, BifrostError):
                raise
            within = f"within {timeout:g} s" if _is_deadline(exc) else f"({exc})"
            raise TimeoutError(f"no answer from {self.endpoint} {within}") from None
        except OSError as exc:
            self._session = 0
            if isinstance(exc, BifrostError):
                raise
            raise ConnectionError(f"lost the connection to {self.endpoint}: {exc}") from None

    # -- addresses ------------------------------------------------------------------------
    def is_address(self, text: str) -> bool:
        """Whether ``text`` starts like a memory address (``mem:``)."""
        return text.strip().lower().startswith(PREFIX)

    def describe(self, tag: Tag) -> dict[str, Any]:
        """Data type and key of a tag."""
        address = resolve(tag)
        return {"dtype": address.type_name, "key": address.key}

    # -- reading --------------------------------------------------------------------------
    def compile_read(self, tags: Sequence[Tag]) -> ReadPlan:
        """Parse the addresses and group the tags per type (no I/O)."""
        return compile_read(tags)

    def explain(self, plan: ReadPlan) -> list[dict[str, Any]]:
        """The one request a read sends."""
        return explain(plan, self.options.name)

    async def execute_read(self, plan: ReadPlan) -> ReadResult:
        """Look up every key at one moment and decode the values per type."""
        started = time.monotonic()
        device = self._ensure_connected()
        try:
            answers = await self._request(device, "read", lambda: device.snapshot(plan.keys))
        except ProtocolError as exc:
            # The device refused the request: every tag is bad, the read still returns.
            names = [t.name for t in plan.tags]
            error = ProtocolError(
                f"{exc} (from {self.endpoint}, reading {len(names)} tags)",
                code=exc.code,
                tags=exc.tags or names,
            )
            n = len(plan.tags)
            return ReadResult(
                plan.tags,
                [],
                np.full(n, Quality.BAD_PROTOCOL, dtype=np.uint8),
                np.full(n, wall_ns(), dtype=np.int64),
                [error],
                started=started,
            )
        return decode(plan, answers, self.options.name, wall_ns(), started)

    # -- writing --------------------------------------------------------------------------
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> list[MemoryWrite]:
        """Check every raw value against its tag's type and convert it; no I/O."""
        writes = []
        for tag, value in items:
            address = resolve(tag)
            raw = values.check(tag, value, address.dtype, address.length)
            writes.append(MemoryWrite(tag, address.key, codec.stored(raw, address.dtype)))
        return writes

    async def execute_write(self, plan: list[MemoryWrite]) -> None:
        """Store every value, or none if one of the keys is read-only on the device."""
        device = self._ensure_connected()
        items = [(w.key, w.value) for w in plan]
        try:
            await self._request(device, "write", lambda: device.store(items))
        except ReadOnlyKey as exc:
            write = next(w for w in plan if w.key == exc.key)
            raise WriteNotAllowed(
                f"tag {write.tag.name!r} ({write.tag.address}) is read-only on {self.endpoint}"
            ) from None

    # -- identification -------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        """The device's :attr:`~MemoryDevice.info`, with protocol and endpoint."""
        device = self._ensure_connected()
        return {"protocol": self.protocol, "endpoint": self.endpoint, **device.info}


def _is_deadline(exc: builtins.TimeoutError) -> bool:
    # asyncio.timeout raises a bare TimeoutError; an injected one carries its message.
    return not exc.args
