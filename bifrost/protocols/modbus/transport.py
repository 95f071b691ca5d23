"""Modbus TCP on the event loop: MBAP framing, transaction ids, stale replies dropped.

bifrost frames Modbus TCP itself rather than through pymodbus' client: that client
checks a reply's transaction id at most, never its function code or byte count against
the request, and a new client (one per reconnect) restarts the ids at 1, so a late reply
that a gateway forwarded onto the next connection was taken for the answer to another
request. Here

- transaction ids come from a :class:`TransactionIds` the driver keeps for its whole
  life, so a reconnect never reuses the ids of the connection before;
- bytes that arrived before a request are discarded unread;
- a reply whose id no request waits for is read whole and dropped (and counted), while
  the request goes on waiting until its deadline;
- protocol id, length and unit id are checked in :mod:`bifrost.protocols.modbus.wire`,
  the PDU against the request in :mod:`bifrost.protocols.modbus.pdu`. A frame whose
  length cannot be trusted closes the connection (the stream is no longer known to be in
  sync); the next request reopens it.

The connection is an asyncio protocol on the caller's event loop (bifrost's loop thread
for the sync API): no thread per device, and several requests can be in flight at once
(:meth:`TcpTransport.start`), each matched to its reply by transaction id.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from collections.abc import Callable
from typing import Any

from bifrost.exceptions import ConnectionError, TimeoutError
from bifrost.protocols.modbus.pdu import Reply, ReplyMismatch, Request, device_id_request
from bifrost.protocols.modbus.wire import Closed, MbapStream, Pending

__all__ = ["TcpTransport", "TransactionIds", "decode_identification"]


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
        Seconds to connect, and each request's time to its reply.
    ids
        The driver's transaction ids.
    """

    def __init__(self, host: str, port: int, timeout: float, ids: TransactionIds) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.endpoint = f"{host}:{port}"
        self._ids = ids
        self._stream: MbapStream | None = None
        self.straggler: Callable[[float], float] | None = None
        self.settle = 0.0  # seconds between opening and the first request (a slow device)
        # Counters of the connections closed so far (the open one's are added on read).
        self._stale = 0
        self._duplicates = 0
        self.stale_bytes = 0  # bytes found waiting before a request, discarded

    @property
    def connected(self) -> bool:
        """Whether a connection is open (as far as the loop has heard)."""
        return self._stream is not None and not self._stream.closed

    @property
    def stale_replies(self) -> int:
        """Replies no request waited for (late, duplicated, forwarded), dropped."""
        return self._stale + (self._stream.stale_replies if self._stream else 0)

    @property
    def duplicates(self) -> int:
        """Of :attr:`stale_replies`, those with the id of a request answered already."""
        return self._duplicates + (self._stream.duplicates if self._stream else 0)

    async def connect(self) -> None:
        """Open the connection if none is open."""
        await self._ready()

    def disconnect(self) -> None:
        """Close the connection if open (requests waiting on it fail as closed)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._stale += stream.stale_replies
            self._duplicates += stream.duplicates
            stream.close()

    async def _ready(self) -> MbapStream:
        stream = self._stream
        if stream is not None and not stream.closed:
            return stream
        # A connection the device closed while idle (or that flooded us) is reopened
        # before anything is sent, so nothing is lost by it.
        self.disconnect()
        loop = asyncio.get_running_loop()
        straggler = self.straggler
        try:
            async with asyncio.timeout(self.timeout):
                _, stream = await loop.create_connection(
                    lambda: MbapStream(straggler), self.host, self.port
                )
        except (builtins.TimeoutError, ConnectionRefusedError):
            raise ConnectionError(
                f"could not connect to the Modbus device at {self.endpoint} (refused or "
                f"unreachable within {self.timeout:g} s); is the device on and the port right?"
            ) from None
        except OSError as exc:
            raise ConnectionError(
                f"could not connect to the Modbus device at {self.endpoint}: {exc}"
            ) from None
        self._stream = stream
        if self.settle:
            # The driver's lock keeps other requests off the connection meanwhile.
            await asyncio.sleep(self.settle)
        return stream

    async def start(self, requests: list[Request], timeout: float | None = None) -> list[Pending]:
        """Send ``requests`` together (opening the connection if needed); await :meth:`reply`.

        Each request fails by itself ``timeout`` seconds (default: the transport's) after
        it was sent.
        """
        stream = self._stream
        if stream is None or stream.closed:
            stream = await self._ready()
        loop = asyncio.get_running_loop()
        pendings = [Pending(r, self._ids.take(), loop.create_future()) for r in requests]
        if not stream.waiting:
            self.stale_bytes += stream.partial
        stream.send(pendings, self.timeout if timeout is None else timeout)
        return pendings

    @property
    def stream(self) -> MbapStream | None:
        """The open connection's protocol object, if any."""
        return self._stream

    async def reply(self, pending: Pending) -> Reply:
        """The checked reply to a started request.

        Raises
        ------
        ReplyMismatch
            The reply does not answer the request (the connection is closed if the
            stream is out of sync).
        TimeoutError
            No reply by the request's deadline (the connection is closed: the rest of a
            late reply may still come, only a new connection is clean).
        ConnectionError
            The connection was lost.
        Resend, Dropped
            (:mod:`~bifrost.protocols.modbus.wire`) for the caller to ask again.
        """
        try:
            return await pending.future
        except builtins.TimeoutError:
            raise self._timed_out() from None
        except Closed:
            self.disconnect()
            raise ConnectionError(
                f"lost the connection to the Modbus device at {self.endpoint}: "
                "closed by the device before it replied"
            ) from None
        except ReplyMismatch as exc:
            if not exc.in_sync:
                self.disconnect()
            raise
        except asyncio.CancelledError:
            self.forget(pending)
            raise

    def forget(self, pending: Pending) -> None:
        """Stop waiting for ``pending``; its reply, if it comes, is dropped and counted."""
        if self._stream is not None:
            self._stream.forget(pending)
        else:
            pending.settle()
        future = pending.future
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: it was the read's to report, or nobody's

    async def exchange(self, request: Request, timeout: float | None = None) -> Reply:
        """Send one request and return its checked reply (see :meth:`reply`)."""
        (pending,) = await self.start([request], timeout)
        return await self.reply(pending)

    async def identify(self, unit: int) -> dict[int, Any]:
        """FC 43/14 basic identification objects (empty if the device refuses)."""
        reply = await self.exchange(device_id_request(unit))
        return decode_identification(reply)

    def _timed_out(self) -> TimeoutError:
        stream = self._stream
        partial = stream.partial if stream is not None else 0
        stale = stream.stale_replies if stream is not None else 0
        self.disconnect()
        return TimeoutError(
            f"no answer from the Modbus device at {self.endpoint} within "
            f"{self.timeout:g} s{_timeout_detail(stale, partial)}"
        )


def decode_identification(reply: Reply) -> dict[int, Any]:
    """FC 43/14 objects from a checked reply, decoded by pymodbus' PDU class."""
    from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

    if reply.exception is not None:
        return {}
    response = ReadDeviceInformationResponse()
    try:
        response.decode(reply.data)
    except Exception:  # a truncated object list; pymodbus raises struct.error
        raise ReplyMismatch("a device identification reply that does not decode") from None
    return dict(response.information)


def _timeout_detail(stale: int, partial: int) -> str:
    notes = []
    if stale:
        notes.append(
            f"{stale} repl{'ies' if stale > 1 else 'y'} with another transaction id discarded"
        )
    if partial:
        notes.append(f"{partial} bytes of an incomplete reply")
    return f" ({'; '.join(notes)})" if notes else ""
