"""Modbus TCP on a plain socket: MBAP framing, transaction ids, stale replies dropped.

bifrost frames Modbus TCP itself rather than through pymodbus' client: that client
checks a reply's transaction id at most, never its function code or byte count against
the request, and a new client (one per reconnect) restarts the ids at 1, so a late reply
that a gateway forwarded onto the next connection was taken for the answer to another
request. Here

- transaction ids come from a :class:`TransactionIds` the driver keeps for its whole
  life, so a reconnect never reuses the ids of the connection before;
- bytes that arrived before a request are discarded unread;
- a reply whose id is not the current request's is read whole and dropped, and the
  wait goes on until the request's deadline;
- protocol id, length and unit id are checked here, the PDU against the request in
  :mod:`bifrost.protocols.modbus.pdu`. A frame whose length cannot be trusted closes the
  connection (the stream is no longer known to be in sync); the next request reopens it.

Every method runs on the connection's worker thread; every wait is bounded by the
request's deadline (:mod:`bifrost.protocols.modbus.wire`).
"""

from __future__ import annotations

import builtins
import random
import struct
import time
from typing import Any, Protocol

from bifrost.exceptions import ConnectionError, TimeoutError
from bifrost.protocols.modbus.pdu import (
    Reply,
    ReplyMismatch,
    Request,
    check_reply,
    device_id_request,
)
from bifrost.protocols.modbus.wire import Closed, DeadlinePassed, Wire

__all__ = ["Link", "TcpTransport", "TransactionIds"]

_MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length, unit id
_MAX_LENGTH = 254  # unit id + the largest PDU (253 bytes)


class Link(Protocol):
    """What the driver needs from a transport (TCP here, RTU in ``client``)."""

    @property
    def connected(self) -> bool:
        """Whether the transport is open."""
        ...

    def connect(self) -> None:
        """Open the transport if it is not."""
        ...

    def disconnect(self) -> None:
        """Close the transport if open."""
        ...

    def exchange(self, request: Request, deadline: float) -> Reply:
        """Send ``request``, return its checked reply by monotonic ``deadline``."""
        ...

    def identify(self, unit: int, deadline: float) -> dict[int, Any]:
        """FC 43/14 basic identification objects (empty if the device refuses)."""
        ...


class TransactionIds:
    """The transaction ids of one driver, carried across its reconnects (mod 65536).

    The first id is random, so a new driver (a new process, a restarted notebook) does
    not repeat its predecessor's ids through the same gateway either.
    """

    def __init__(self, first: int | None = None) -> None:
        self._next = random.randrange(65536) if first is None else first & 0xFFFF

    def take(self) -> int:
        """The id for the next request."""
        tid = self._next
        self._next = (tid + 1) & 0xFFFF
        return tid


class TcpTransport:
    """One Modbus TCP connection at a time to ``host:port``, reopened on demand.

    Parameters
    ----------
    host, port
        The device or gateway.
    timeout
        Seconds to connect, and the default span of a request's deadline.
    ids
        The driver's transaction ids.
    """

    def __init__(self, host: str, port: int, timeout: float, ids: TransactionIds) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.endpoint = f"{host}:{port}"
        self._ids = ids
        self._wire: Wire | None = None
        self.stale_replies = 0  # replies to other transactions, read and dropped
        self.stale_bytes = 0  # bytes found waiting before a request, discarded

    @property
    def connected(self) -> bool:
        """Whether a connection is open (the device may have closed it since)."""
        return self._wire is not None

    def connect(self) -> None:
        """Open the connection if none is open."""
        if self._wire is None:
            self._wire = self._open()

    def disconnect(self) -> None:
        """Close the connection if open."""
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()

    def exchange(self, request: Request, deadline: float) -> Reply:
        """Send ``request`` and return its reply, checked, by monotonic ``deadline``.

        Raises
        ------
        ReplyMismatch
            The reply does not answer the request (the connection is closed if the
            stream is out of sync).
        TimeoutError
            No reply to this request by ``deadline`` (the connection is closed).
        ConnectionError
            The connection could not be opened or was lost.
        """
        wire = self._ready_wire()
        tid = self._ids.take()
        frame = _MBAP.pack(tid, 0, len(request.pdu) + 1, request.unit) + request.pdu
        stale_before = self.stale_replies
        try:
            wire.send(frame, deadline)
            return self._receive(wire, request, tid, deadline)
        except ReplyMismatch as exc:
            if not exc.in_sync:
                self.disconnect()
            raise
        except DeadlinePassed:
            # The rest of a late reply may still come: only a new connection is clean.
            self.disconnect()
            detail = _timeout_detail(self.stale_replies - stale_before, wire.pending)
            raise TimeoutError(
                f"no answer from the Modbus device at {self.endpoint} within "
                f"{self.timeout:g} s{detail}"
            ) from None
        except Closed:
            self.disconnect()
            raise ConnectionError(
                f"lost the connection to the Modbus device at {self.endpoint}: "
                "closed by the device before it replied"
            ) from None
        except OSError as exc:
            self.disconnect()
            raise ConnectionError(
                f"lost the connection to the Modbus device at {self.endpoint}: {exc}"
            ) from None

    def identify(self, unit: int, deadline: float) -> dict[int, Any]:
        """FC 43/14 basic identification, decoded by pymodbus' PDU class."""
        from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

        reply = self.exchange(device_id_request(unit), deadline)
        if reply.exception is not None:
            return {}
        response = ReadDeviceInformationResponse()
        try:
            response.decode(reply.data)
        except Exception:  # a truncated object list; pymodbus raises struct.error
            raise ReplyMismatch("a device identification reply that does not decode") from None
        return dict(response.information)

    # -- the connection -------------------------------------------------------------------
    def _open(self) -> Wire:
        try:
            return Wire.open(self.host, self.port, self.timeout)
        except (builtins.TimeoutError, ConnectionRefusedError):
            raise ConnectionError(
                f"could not connect to the Modbus device at {self.endpoint} (refused or "
                f"unreachable within {self.timeout:g} s); is the device on and the port right?"
            ) from None
        except OSError as exc:
            raise ConnectionError(
                f"could not connect to the Modbus device at {self.endpoint}: {exc}"
            ) from None

    def _ready_wire(self) -> Wire:
        # Whatever is waiting now answers no request of ours (a late or duplicated
        # reply): dropped unread. A connection the device closed while idle is reopened
        # before anything is sent, so nothing is lost by it.
        wire = self._wire if self._wire is not None else self._open()
        self._wire = wire
        dropped = wire.discard_waiting()
        if dropped is None:
            self.disconnect()
            wire = self._wire = self._open()
        else:
            self.stale_bytes += dropped
        return wire

    def _receive(self, wire: Wire, request: Request, tid: int, deadline: float) -> Reply:
        while True:
            reply_tid, protocol, length, unit = _MBAP.unpack(wire.take(_MBAP.size, deadline))
            if protocol != 0:
                raise ReplyMismatch(
                    f"protocol id {protocol} in the MBAP header, expected 0", in_sync=False
                )
            if not 2 <= length <= _MAX_LENGTH:
                raise ReplyMismatch(f"MBAP length {length}, outside 2-{_MAX_LENGTH}", in_sync=False)
            pdu = wire.take(length - 1, deadline)
            if reply_tid != tid:
                # A reply to an earlier request (late, or forwarded by a gateway from
                # the connection before this one): never the answer to this one. The
                # deadline is checked here too: frames that keep coming need no wait.
                self.stale_replies += 1
                if time.monotonic() >= deadline:
                    raise DeadlinePassed
                continue
            if unit != request.unit:
                raise ReplyMismatch(f"unit id {unit} in the reply, expected {request.unit}")
            return check_reply(request, pdu)


def _timeout_detail(stale: int, partial: int) -> str:
    notes = []
    if stale:
        notes.append(
            f"{stale} repl{'ies' if stale > 1 else 'y'} with another transaction id discarded"
        )
    if partial:
        notes.append(f"{partial} bytes of an incomplete reply")
    return f" ({'; '.join(notes)})" if notes else ""
