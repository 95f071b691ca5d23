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

A sync caller with the connection to itself reads without the loop: the loop stops
reading the socket and hands it over (:meth:`TcpTransport.hand_over`), the caller's
thread sends and waits for the replies itself (:meth:`TcpTransport.enter` to
:meth:`TcpTransport.leave`, see :class:`bifrost._portal.Handover` for who may), and any
use of the connection from the loop takes it back first (:meth:`TcpTransport.take_back`).
Whatever cannot be done off the loop (reconnecting, a busy device's pauses) is where
the call moves onto the loop: the coroutine suspends there (:data:`TO_LOOP`) and the
caller's thread hands the rest of it, requests in flight included, to the loop.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import random
import threading
from collections.abc import Callable, Generator
from typing import Any

from bifrost.exceptions import ConnectionError, TimeoutError
from bifrost.protocols.modbus.pdu import BUSY, Reply, ReplyMismatch, Request, device_id_request
from bifrost.protocols.modbus.wire import (
    OFF_LOOP_POSSIBLE,
    Closed,
    DirectSocket,
    MbapStream,
    Pending,
)

__all__ = [
    "TO_LOOP",
    "TcpTransport",
    "TransactionIds",
    "decode_identification",
    "off_loop_transport",
]


class _ToLoop:
    """Awaited off the loop where the rest of a call needs it: it suspends there once.

    The thread driving the call sees it suspend and hands it to the loop, where it goes
    on from this point (on the loop itself, a bare yield: one loop iteration).
    """

    def __await__(self) -> Generator[None, None, None]:
        yield


TO_LOOP = _ToLoop()


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
        # The thread reading off the loop (between enter() and leave()), and until when.
        self._owner: int | None = None
        self._limit = math.inf
        self.direct_reads = 0  # reads done off the loop (enter() that said yes)

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

    # -- handing the socket to a caller's thread -----------------------------------------
    @property
    def handed_over(self) -> bool:
        """Whether the loop has stopped reading the open connection, for a caller's thread."""
        stream = self._stream
        return stream is not None and stream.direct is not None and not stream.closed

    def hand_over(self) -> bool:
        """On the loop: stop reading the socket there, for :meth:`enter`; whether it could.

        Only an open connection with no request waiting and nothing left to write.
        """
        stream = self._stream
        if stream is None or stream.closed or stream.waiting:
            return False
        if stream.direct is not None:
            return True
        transport = stream.transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size():
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        transport.pause_reading()
        stream.hand_over(DirectSocket(sock.fileno()))
        return True

    def take_back(self) -> None:
        """On the loop, with no thread between :meth:`enter` and :meth:`leave`: read there."""
        stream = self._stream
        if stream is None or stream.direct is None:
            return
        if self._owner is not None:
            # The handover's rule was broken: the loop must not touch the socket now.
            raise RuntimeError(
                f"the Modbus connection to {self.endpoint} was used from the loop while "
                "a caller's thread was reading it"
            )
        stream.take_back()
        if not stream.closed and stream.transport is not None:
            stream.transport.resume_reading()

    def enter(self, limit: float) -> bool:
        """On a caller's thread: start reading off the loop, until monotonic ``limit``.

        False if the connection is not handed over (or not open, or busy): the caller
        goes through the loop. Called under :class:`bifrost._portal.Handover`'s lock.
        """
        stream = self._stream
        if stream is None or stream.closed or stream.direct is None or stream.waiting:
            return False
        self._owner = threading.get_ident()
        self._limit = limit
        self.direct_reads += 1
        return True

    def leave(self, moving: bool = False) -> None:
        """End :meth:`enter`; requests left unanswered (an interrupted call) are forgotten.

        ``moving``: the call goes on on the loop, with its requests still in flight.
        """
        stream = self._stream
        if not moving and stream is not None and stream.waiting:
            for pending in list(stream.waiting.values()):
                self.forget(pending)
        self._owner = None
        self._limit = math.inf

    def _off_loop(self) -> bool:
        # Whether this thread holds the connection off the loop; on the loop, a use the
        # handover did not see first (none should) takes the socket back.
        owner = self._owner
        if owner is not None and owner == threading.get_ident():
            return True
        if self._stream is not None and self._stream.direct is not None:
            self.take_back()
        return False

    def _start_off_loop(
        self, requests: list[Request], timeout: float | None
    ) -> list[Pending] | None:
        # None: the connection has to be reopened, which is the loop's to do (the device
        # closed it while idle, or a request before reset it); nothing was sent.
        stream = self._stream
        if stream is None or stream.closed or stream.direct is None:
            return None
        stream.drain()
        if stream.closed:
            return None
        return self._send(stream, requests, timeout)

    def _send(
        self, stream: MbapStream, requests: list[Request], timeout: float | None
    ) -> list[Pending]:
        # Ids from the driver's sequence; bytes left over from an earlier reply are only
        # stale when nothing is in flight to claim them.
        take = self._ids.take
        pendings = [Pending(r, take()) for r in requests]
        if not stream.waiting:
            self.stale_bytes += stream.partial
        stream.send(pendings, self.timeout if timeout is None else timeout)
        return pendings

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
        if self._off_loop():
            pendings = self._start_off_loop(requests, timeout)
            if pendings is not None:
                return pendings
            await TO_LOOP  # from here on, on the loop
        stream = self._stream
        if stream is None or stream.closed:
            stream = await self._ready()
        return self._send(stream, requests, timeout)

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
        reply = pending.reply
        if reply is not None and reply.exception is None:
            return reply  # the usual case, already in (a burst's replies come together)
        owner = self._owner
        off_loop = owner is not None and owner == threading.get_ident()
        try:
            if pending.reply is None and pending.error is None:
                if off_loop:
                    stream = self._stream
                    if stream is not None and not stream.wait(pending, self._limit):
                        # The sync call's own time is up: it ends as a cancelled call does.
                        raise asyncio.CancelledError
                if pending.reply is None and pending.error is None:
                    if off_loop:
                        # No outcome off the loop and no way to wait for one there (it
                        # cannot happen: closing fails every request waiting).
                        off_loop = False
                        await TO_LOOP
                    await _outcome(pending)
            error = pending.error
            if error is not None:
                raise error
            reply = pending.reply
            assert reply is not None
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
        if off_loop and reply.exception == BUSY:
            # A busy device is asked again after pauses: the loop's to wait.
            await TO_LOOP
        return reply

    def forget(self, pending: Pending) -> None:
        """Stop waiting for ``pending``; its reply, if it comes, is dropped and counted."""
        if self._stream is not None:
            self._stream.forget(pending)
        else:
            pending.settle()

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


async def _outcome(pending: Pending) -> None:
    # On the loop: wait until the stream gives the request its outcome.
    waiter = pending.waiter = asyncio.get_running_loop().create_future()
    try:
        await waiter
    finally:
        pending.waiter = None


def off_loop_transport(driver: object) -> TcpTransport | None:
    """The TCP transport of a Modbus driver whose reads may run off the loop, or None.

    Not for RTU (a worker thread's serial client), nor for devices that need quiet time
    between requests or a new connection per cycle: their pauses and reconnects are
    the loop's to wait for. POSIX only (``wire.OFF_LOOP_POSSIBLE``).
    """
    transport = getattr(driver, "_tcp", None)
    options = getattr(driver, "options", None)
    if not OFF_LOOP_POSSIBLE or not isinstance(transport, TcpTransport) or options is None:
        return None
    if getattr(options, "pause_between_requests", 1) or getattr(
        options, "close_after_each_cycle", True
    ):
        return None
    return transport


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
