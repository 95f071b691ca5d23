"""Siemens S7 (classic S7 protocol, ISO-on-TCP) through python-snap7's client.

Every call to one PLC runs on the connection's worker thread (snap7's client blocks and
is not thread-safe); a whole batch read is one job there (:mod:`.client`). Reads are
planned per tag set and PDU size (:mod:`.plan`); the replies are concatenated into one
byte image and decoded per type with one vectorised NumPy step (:mod:`.codec`).

Classic S7 exposes no symbol table: there is nothing to browse but the data blocks
(listed by :meth:`S7Driver.info`); the connection's tag table (CSV, YAML, or a TIA Portal
export through :func:`bifrost.protocols.s7.tia.tags_from_tia`) names the addresses.
"""

from __future__ import annotations

import asyncio
import builtins
import socket
import threading
from collections.abc import Callable, Sequence
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
from bifrost.model import DataType, Quality, Tag
from bifrost.protocols.base import Driver, ReadResult
from bifrost.protocols.s7 import client as snap7_calls
from bifrost.protocols.s7 import codec
from bifrost.protocols.s7.errors import diagnose, error_code
from bifrost.protocols.s7.options import CONNECTION_TYPES, S7Options
from bifrost.protocols.s7.plan import (
    PDU_BEFORE_CONNECT,
    ReadPlan,
    compile_read,
    explain,
    is_s7_address,
    layout,
    resolve,
)
from bifrost.protocols.worker import HANDOVER_LEAD, BlockingWorker

__all__ = ["S7Driver"]

T = TypeVar("T")


def _call(abandon: threading.Event, fn: Callable[..., T], *args: Any) -> T:
    BlockingWorker.check(abandon)
    return fn(*args)


class S7Driver(Driver):
    """Classic S7 driver (python-snap7 client on the connection's worker thread)."""

    protocol: ClassVar[str] = "s7"

    def __init__(self, options: S7Options) -> None:
        self.options = options
        self._client: Any = None
        self._worker = BlockingWorker(f"bifrost-s7-{options.host}:{options.port}")
        self._pdu = 0
        self._connect_lock: asyncio.Lock | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` of the PLC."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the client's connection is up (as of its last request)."""
        client = self._client
        # Only the cached flag: snap7's get_connected() peeks at the socket, which would
        # race with a request in flight on the worker thread.
        return bool(client is not None and client.connected)

    @property
    def pdu_size(self) -> int:
        """PDU size negotiated with the PLC (0 before the first connect)."""
        return self._pdu

    # -- the worker thread ----------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking snap7 call on the worker; translate what it raises."""
        try:
            return await self._worker.run(_call, fn, *args)
        except BifrostError:
            raise
        except Exception as exc:
            raise await self._translate(exc) from None

    async def _translate(self, exc: Exception) -> BifrostError:
        from snap7.error import S7ConnectionError, S7ProtocolError, S7TimeoutError

        text = str(exc) or type(exc).__name__
        what = f"the S7 PLC at {self.endpoint}"
        # The connection's state is unknown after any of these: start afresh next time.
        await self.close()
        if isinstance(exc, S7TimeoutError | socket.timeout | builtins.TimeoutError):
            return TimeoutError(f"no answer from {what} within {self.options.timeout:g} s")
        if isinstance(exc, S7ConnectionError | OSError):
            return ConnectionError(f"lost the connection to {what}: {text}")
        if isinstance(exc, S7ProtocolError):
            code = error_code(exc)
            # Only a refused header says something about the CPU's settings here.
            advice = diagnose(code, "") if code is not None and code > 0xFF else ""
            return ProtocolError(
                f"{what} answered with an error: {text}" + (f"; {advice}" if advice else ""),
                code=code,
            )
        return ConnectionError(f"unexpected failure talking to {what}: {text}")

    # -- transport ------------------------------------------------------------------------
    def _connect_blocking(self, abandon: threading.Event) -> tuple[Any, int]:
        import snap7

        client = snap7.Client()
        client.set_connection_type(CONNECTION_TYPES[self.options.connection_type])
        client.connect(self.options.host, self.options.rack, self.options.slot, self.options.port)
        connection = client.connection
        if connection is not None and connection.socket is not None:
            # snap7 waits 5 s per receive by default; the user's timeout applies instead.
            connection.timeout = self.options.timeout
            connection.socket.settimeout(self.options.timeout)
        # One exact multi-item request per packet: our planner merged and packed already,
        # and the PLC negotiated one request in flight, so no pipelining either.
        client.multi_read_max_gap = -1
        client.max_parallel = 1
        return client, int(client.pdu_length)

    async def connect(self) -> None:
        """Connect to the PLC (ISO-on-TCP, then S7 setup communication)."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self.connected:
                return
            await self.close()
            what = (
                f"the S7 PLC at {self.endpoint} (rack {self.options.rack}, "
                f"slot {self.options.slot})"
            )
            try:
                # snap7's own connect timeout may keep the thread blocked beyond ours: the
                # worker then leaves it to end by itself and the next attempt gets a new one.
                self._client, self._pdu = await self._worker.run(
                    self._connect_blocking, timeout=self.options.timeout
                )
            except builtins.TimeoutError:
                self._client = None
                raise TimeoutError(
                    f"could not connect to {what} within {self.options.timeout:g} s"
                ) from None
            except Exception as exc:
                await self.close()
                text = str(exc) or type(exc).__name__
                kind = self.options.connection_type
                raise ConnectionError(
                    f"could not connect to {what} as connection_type={kind!r}: {text}; is the "
                    "PLC on, the port right, PUT/GET access enabled and a connection of that "
                    "type free?"
                ) from None

    async def close(self) -> None:
        """Disconnect and stop the worker thread (idempotent)."""
        client, self._client = self._client, None
        last = None if client is None else lambda: snap7_calls.disconnect(client)
        await self._worker.shutdown(last, self.options.timeout)

    async def _ensure_connected(self) -> None:
        if not self.connected:
            await self.connect()

    # -- addresses ------------------------------------------------------------------------
    def is_address(self, text: str) -> bool:
        """Whether ``text`` starts like an S7 address (``DB1.DBD4``, ``MW10``, ``I0.0``...)."""
        return is_s7_address(text)

    def describe(self, tag: Tag) -> dict[str, Any]:
        """Data type, S7 type, area, data block, byte offset and bit of a tag."""
        address = resolve(tag)
        dtype = (
            f"string[{address.chars}]" if address.dtype is DataType.STRING else address.dtype.value
        )
        s7type = f"STRING[{address.length}]" if address.s7type == "STRING" else address.s7type
        return {
            "dtype": dtype,
            "s7type": s7type,
            "area": address.area,
            "db": address.db if address.area == "DB" else None,
            "offset": address.offset,
            "bit": address.bit if address.is_bit else None,
            "bytes": address.size,
        }

    # -- reading --------------------------------------------------------------------------
    def compile_read(self, tags: Sequence[Tag]) -> ReadPlan:
        """Validate the addresses and prepare the vectorised decoding (no I/O).

        The requests themselves depend on the PDU size the PLC negotiates; they are laid
        out on first use for each PDU size and kept with the plan.
        """
        return compile_read(tags)

    def explain(self, plan: ReadPlan) -> list[dict[str, Any]]:
        """One row per S7 request at the negotiated PDU size (480 before connecting)."""
        return explain(plan, self._pdu or PDU_BEFORE_CONNECT, self.options)

    async def execute_read(self, plan: ReadPlan) -> ReadResult:
        """Send the planned requests (in one call onto the worker) and decode the replies."""
        return await self._execute(plan, None)

    @property
    def cycle_lead(self) -> float:
        """snap7 runs on the worker thread: each cycle is handed over early."""
        return HANDOVER_LEAD

    async def execute_read_at(self, plan: ReadPlan, due: float) -> ReadResult:
        """Like :meth:`execute_read`; the worker itself waits until monotonic ``due``."""
        return await self._execute(plan, due)

    async def _execute(self, plan: ReadPlan, due: float | None) -> ReadResult:
        await self._ensure_connected()
        laid_out = layout(plan, self._pdu, self.options)
        image = np.zeros(laid_out.size, dtype=np.uint8)
        failures, started = await self._run(
            snap7_calls.read_all, self._client, plan, laid_out, image, due
        )
        timestamp = wall_ns()
        quality = np.zeros(len(plan.tags), dtype=np.uint8)
        errors = []
        for failure in failures:
            quality[list(failure.members)] = Quality.BAD_PROTOCOL
            names = [plan.tags[m].name for m in failure.members]
            shown = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
            address = plan.addresses[failure.members[0]]
            advice = diagnose(failure.code, address.area, address.db)
            errors.append(
                ProtocolError(
                    f"the S7 PLC at {self.endpoint} refused reading "
                    f"{address} for tag"
                    f"{'s' if len(names) > 1 else ''} {shown}: {failure.message}"
                    + (f"; {advice}" if advice else ""),
                    code=failure.code,
                    tags=names,
                )
            )
        columns = [
            (g.positions, codec.decode(g, image, laid_out.starts, plan.bits)) for g in plan.groups
        ]
        return ReadResult(
            plan.tags,
            columns,
            quality,
            np.full(len(plan.tags), timestamp, dtype=np.int64),
            errors,
            started=started,
        )

    # -- writing --------------------------------------------------------------------------
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> list[snap7_calls.S7Write]:
        """Check every raw value against its tag's type and encode it; no I/O."""
        writes = []
        for tag, value in items:
            address = resolve(tag)
            if address.area == "I":
                raise WriteNotAllowed(
                    f"tag {tag.name!r} ({tag.address}) is a process input: the PLC overwrites "
                    "the input image every scan, so bifrost does not write it"
                )
            raw = values.check(tag, value, address.dtype, address.chars)
            writes.append(snap7_calls.S7Write(tag, address, codec.encode(address, raw)))
        return writes

    async def execute_write(self, plan: list[snap7_calls.S7Write]) -> None:
        """Send the writes in order (one call onto the worker); stop at the first refusal."""
        if not plan:
            return
        await self._ensure_connected()
        failure = await self._run(snap7_calls.write_all, self._client, plan)
        if failure is not None:
            write, text, code = failure
            advice = diagnose(code, write.address.area, write.address.db)
            raise ProtocolError(
                f"the S7 PLC at {self.endpoint} refused writing tag {write.tag.name!r} "
                f"({write.address}): {text}" + (f"; {advice}" if advice else ""),
                code=code,
                tags=[write.tag.name],
            )

    # -- identification -------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        """CPU identification, order code, firmware and data blocks, as far as offered."""
        await self._ensure_connected()
        result: dict[str, Any] = {
            "protocol": "s7",
            "endpoint": self.endpoint,
            "rack": self.options.rack,
            "slot": self.options.slot,
            "connection_type": self.options.connection_type,
            "pdu_size": self._pdu,
            "vendor": "Siemens",
        }
        result.update(await self._run(snap7_calls.identify, self._client))
        return result
