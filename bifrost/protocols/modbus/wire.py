"""One Modbus TCP connection on the event loop: MBAP frames cut from the stream, matched by id.

An :class:`asyncio.Protocol`: bytes are taken as they arrive (no thread, no blocking
read), cut into frames by the MBAP header, and each frame is handed to the request
waiting for its transaction id, after the reply checks of
:mod:`bifrost.protocols.modbus.pdu`. A frame whose id no request waits for (a late
reply, a duplicate, another connection's reply forwarded by a gateway) is dropped and
counted. A header whose protocol id or length cannot be right means the stream is no
longer known to be cut at frame boundaries: the connection is closed.

The same object also runs the connection off the loop (:class:`DirectSocket`): while the
loop has stopped reading the socket and handed it to one caller's thread, that thread
writes the requests and reads the replies itself, through the same framing, checks,
deadlines and straggler graces, and the loop is only asked to close the transport.
"""

from __future__ import annotations

import asyncio
import math
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Any

from bifrost.protocols.modbus.pdu import Reply, ReplyMismatch, Request, check_reply

__all__ = [
    "MBAP",
    "OFF_LOOP_POSSIBLE",
    "Closed",
    "DirectSocket",
    "Dropped",
    "MbapStream",
    "Pending",
    "Resend",
]

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length, unit id
_HEADER = MBAP.size
_MAX_LENGTH = 254  # unit id + the largest PDU (253 bytes)
# Bytes a device may send while no request of ours waits before the connection counts as
# flooding (sending without being asked); it is then closed and reopened on demand.
MAX_IDLE_BYTES = 65536
# DirectSocket reads a socket's descriptor with os.read and waits with poll(): POSIX only.
OFF_LOOP_POSSIBLE = os.name == "posix" and hasattr(select, "poll")
_NEW_REPLY = tuple.__new__  # a Reply without the named tuple's Python-level __new__
# How many answered transaction ids are remembered to tell a duplicated reply from a
# merely late one.
_RECENT = 64


class Closed(Exception):
    """The device closed the connection (or it was lost) before the reply came."""


class Resend(Exception):
    """The request's connection was reset because of another request's reply: ask again."""


class Dropped(Exception):
    """Later requests were answered and this one was not, for far longer than they took."""


class Pending:
    """One request on the wire, waiting for its reply.

    Its outcome (the checked reply, or what went wrong) is kept on it; a future exists
    only while a coroutine on the loop waits for an outcome not in yet, so the replies
    of a burst that arrive together cost one wake-up, not one future each.
    """

    __slots__ = (
        "deadline",
        "due",
        "error",
        "reply",
        "request",
        "sent",
        "seq",
        "straggler",
        "tid",
        "waiter",
    )

    def __init__(self, request: Request, tid: int) -> None:
        self.request = request
        self.tid = tid
        self.reply: Reply | None = None
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.sent = 0.0
        self.seq = 0  # the order it went on the wire
        self.deadline = 0.0  # on the loop's clock; the connection's deadline timer fails it
        self.straggler: asyncio.TimerHandle | None = None
        self.due = math.inf  # off the loop, the straggler grace's end (no timer there)

    @property
    def done(self) -> bool:
        """Whether the outcome is in."""
        return self.reply is not None or self.error is not None

    def answer(self, reply: Reply) -> None:
        """The checked reply (the first outcome stays)."""
        if self.reply is None and self.error is None:
            self.reply = reply
            self._wake()

    def fail(self, error: BaseException) -> None:
        """What went wrong instead of a reply (the first outcome stays)."""
        if self.reply is None and self.error is None:
            self.error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def settle(self) -> None:
        """Cancel the straggler timer (the outcome is known)."""
        if self.straggler is not None:
            self.straggler.cancel()


class DirectSocket:
    """A connection's socket read and written from a caller's thread, not the loop's.

    Only while the loop does not read it (reading paused) and one thread at a time holds
    it; the socket stays non-blocking (the flag belongs to the loop's socket too), so
    waits go through ``poll``.
    """

    __slots__ = ("_fd", "_readable")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._readable = select.poll()
        self._readable.register(fd, select.POLLIN)

    def read(self, timeout: float) -> bytes | None:
        """What arrived within ``timeout`` seconds: None if nothing, b"" if the peer closed."""
        if not self._readable.poll(math.ceil(timeout * 1000) if timeout > 0 else 0):
            return None
        try:
            return os.read(self._fd, 65536)
        except BlockingIOError:
            return None

    def write(self, data: bytes, deadline: float) -> None:
        """Write all of ``data``, waiting for room until monotonic ``deadline``.

        Raises
        ------
        OSError
            The connection failed, or no room came by the deadline (``ETIMEDOUT``).
        """
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._fd, view) :]
            except BlockingIOError:
                writable = select.poll()
                writable.register(self._fd, select.POLLOUT)
                left = deadline - time.monotonic()
                if left <= 0 or not writable.poll(math.ceil(left * 1000)):
                    raise TimeoutError("no room in the socket's send buffer") from None


class MbapStream(asyncio.Protocol):
    """The protocol object of one TCP connection.

    Parameters
    ----------
    straggler
        Given an answered request's round trip, how long an earlier request still
        waiting may stay unanswered before it counts as dropped (None: never, it waits
        for its deadline). Pipelined connections set it.

    Attributes
    ----------
    probing
        While True, every request still waiting when another is answered gets that
        grace, not only those sent before it: a device that answers the first of a burst
        and drops the rest (pymodbus' server does) is found within the grace, not after
        the whole timeout. Cleared once the device has answered a whole burst.
    """

    def __init__(self, straggler: Callable[[float], float] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: dict[int, Pending] = {}  # in the order sent
        self.straggler = straggler
        self.probing = straggler is not None
        self.closed = False
        self.flooded = False
        self.stale_replies = 0  # frames whose id no request waits for, dropped
        self.duplicates = 0  # of those, ids that were answered already
        self.idle_bytes = 0  # bytes received while no request waited
        self._buffer = bytearray()
        self._recent: dict[int, None] = {}
        self._seq = 0
        # One timer for the connection, at the earliest deadline of the requests waiting,
        # rather than one per request armed and cancelled every cycle: a request answered
        # in time leaves it alone, and it fails only requests whose own deadline passed.
        self._deadline_timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # Set while the socket is handed to a caller's thread (see :meth:`hand_over`).
        self.direct: DirectSocket | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # noqa: D102
        self.transport = transport
        self.loop = asyncio.get_running_loop()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self.closed = True
        self._fail_all(Closed())

    def data_received(self, data: bytes) -> None:  # noqa: D102
        if not self.waiting:
            self.idle_bytes += len(data)
            if self.idle_bytes > MAX_IDLE_BYTES:
                self.flooded = True
                self.close()
                return
        buffer = self._buffer
        if buffer:
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        # Frames are cut from one immutable chunk (the common case: the replies of a
        # burst arrive together), each copied once; what is left of a frame is kept.
        size = len(data)
        offset = 0
        waiting = self.waiting
        recent = self._recent
        answered = None
        while size - offset >= _HEADER:
            tid, protocol, length, unit = MBAP.unpack_from(data, offset)
            if protocol != 0:
                self._out_of_sync(tid, f"protocol id {protocol} in the MBAP header, expected 0")
                return
            if not 2 <= length <= _MAX_LENGTH:
                self._out_of_sync(tid, f"MBAP length {length}, outside 2-{_MAX_LENGTH}")
                return
            end = offset + 6 + length
            if size < end:
                break
            pdu = data[offset + _HEADER : end]
            offset = end
            pending = waiting.pop(tid, None)
            if pending is None:
                self.stale_replies += 1
                if tid in recent:
                    self.duplicates += 1
                continue
            request = pending.request
            # The good read reply, accepted inline (pdu.is_good_read, spelled out: this
            # runs for every reply); anything else gets the full checks and its reason.
            reply_size = request.reply_size
            if (
                unit == request.unit
                and length - 1 == reply_size
                and pdu[0] == request.function
                and pdu[1] + 2 == reply_size
            ):
                if pending.straggler is not None:
                    pending.straggler.cancel()
                recent[tid] = None
                if len(recent) > _RECENT:
                    del recent[next(iter(recent))]
                if pending.reply is None and pending.error is None:
                    pending.reply = _NEW_REPLY(Reply, (None, pdu[2:]))
                    if pending.waiter is not None:
                        pending._wake()
            elif not self._answered(pending, unit, pdu):
                if self.closed:
                    return
                waiting = self.waiting
                continue
            if answered is None or pending.seq > answered.seq:
                answered = pending
        if offset < size:
            buffer += data[offset:]
        if answered is not None and self.straggler is not None and self.waiting:
            # Once per chunk, not per reply: the latest-sent request answered covers
            # every request sent before it, and the replies of one chunk came together.
            self._watch_stragglers(answered)

    # -- requests -------------------------------------------------------------------------
    def send(self, pendings: list[Pending], timeout: float) -> None:
        """Put the requests on the wire in one write; each fails by itself at its deadline."""
        assert self.transport is not None
        if not self.waiting:
            # Whatever is buffered now answers no request of ours (the rest of a frame
            # that came unasked): dropped unread, so the stream starts afresh.
            self._buffer.clear()
            self.idle_bytes = 0
        direct = self.direct
        now = time.monotonic()
        if direct is None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
        else:
            deadline = now + timeout  # the loop's clock is time.monotonic() as well
        waiting = self.waiting
        frames = []
        seq = self._seq
        pack = MBAP.pack
        for pending in pendings:
            request = pending.request
            pdu = request.pdu
            frames.append(pack(pending.tid, 0, len(pdu) + 1, request.unit) + pdu)
            pending.sent = now
            seq += 1
            pending.seq = seq
            pending.deadline = deadline
            waiting[pending.tid] = pending
        self._seq = seq
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        if direct is not None:
            # No timer off the loop: the thread waiting for a reply watches the deadlines.
            try:
                direct.write(data, deadline)
            except OSError as exc:
                self._lost(exc)
            return
        timer = self._deadline_timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._deadline_timer = loop.call_at(deadline, self._expire_due, deadline)
        self.transport.write(data)

    def forget(self, pending: Pending) -> None:
        """Stop waiting for ``pending`` (a cancelled call): its reply will be dropped."""
        pending.settle()
        if self.waiting.get(pending.tid) is pending:
            del self.waiting[pending.tid]

    @property
    def partial(self) -> int:
        """Bytes received and not yet a whole frame."""
        return len(self._buffer)

    def close(self) -> None:
        """Close the connection; every request still waiting fails with :class:`Closed`."""
        self.closed = True
        self._close_transport()
        self._fail_all(Closed())

    # -- off the loop ---------------------------------------------------------------------
    def hand_over(self, direct: DirectSocket) -> None:
        """Let a caller's thread use the socket (the loop has paused reading it).

        Only with no request waiting; the deadline timer goes, as the thread waiting for
        a reply watches the deadlines itself.
        """
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self.direct = direct

    def take_back(self) -> None:
        """Back on the loop: its timers take over the deadlines of requests still waiting."""
        self.direct = None
        if self.closed or not self.waiting:
            return
        loop = asyncio.get_running_loop()
        first = min(pending.deadline for pending in self.waiting.values())
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        self._deadline_timer = loop.call_at(first, self._expire_due, first)
        for pending in self.waiting.values():
            if pending.due != math.inf and pending.straggler is None:
                pending.straggler = loop.call_at(pending.due, _dropped, pending)

    def drain(self) -> None:
        """Take in, off the loop, what came while no request waited, as the loop would have."""
        while self.direct is not None and not self.closed:
            try:
                data = self.direct.read(0)
            except OSError as exc:
                self._lost(exc)
                return
            if data is None:
                return
            if not data:
                self._lost(None)
                return
            self.data_received(data)

    def wait(self, pending: Pending, limit: float) -> bool:
        """Read off the loop until ``pending`` has its outcome; False if ``limit`` came first.

        ``limit`` (monotonic) bounds the whole call; each request's own deadline and
        straggler grace fail it as the loop's timers would.
        """
        while pending.reply is None and pending.error is None:
            direct = self.direct
            if direct is None or self.closed:
                break  # closed: every request waiting has failed with it
            now = time.monotonic()
            due = min(pending.deadline, pending.due, limit)
            if now >= due:
                if now >= limit:
                    return False
                self._expire_direct(now)
                continue
            try:
                data = direct.read(due - now)
            except OSError as exc:
                self._lost(exc)
                break
            if data is None:
                continue
            if not data:
                self._lost(None)
                break
            self.data_received(data)
        return True

    # -- inside ---------------------------------------------------------------------------
    def _answered(self, pending: Pending, unit: int, pdu: bytes) -> bool:
        # Whether the reply answered its request (False: rejected by the checks).
        if pending.straggler is not None:
            pending.straggler.cancel()
        tid = pending.tid
        recent = self._recent
        recent[tid] = None
        if len(recent) > _RECENT:
            del recent[next(iter(recent))]
        request = pending.request
        try:
            if unit != request.unit:
                raise ReplyMismatch(f"unit id {unit} in the reply, expected {request.unit}")
            reply = check_reply(request, pdu)
        except ReplyMismatch as exc:
            pending.fail(exc)
            if not exc.in_sync:
                self._reset()
            return False
        pending.answer(reply)
        return True

    def _watch_stragglers(self, answered: Pending) -> None:
        # Requests sent before the one just answered are still waiting: a device that
        # answers in order has dropped them. They get a grace scaled to the round trip
        # the answered one took (a device may answer out of order), then count as
        # dropped rather than waiting out the whole timeout.
        assert self.straggler is not None
        now = time.monotonic()
        grace = self.straggler(now - answered.sent)
        if self.direct is not None:
            for pending in self.waiting.values():
                if pending.seq > answered.seq and not self.probing:
                    break
                if pending.due == math.inf:
                    pending.due = now + grace
            return
        loop = asyncio.get_running_loop()
        for pending in self.waiting.values():
            if pending.seq > answered.seq and not self.probing:
                break
            if pending.straggler is None:
                pending.straggler = loop.call_later(grace, _dropped, pending)

    def _out_of_sync(self, tid: int, reason: str) -> None:
        # The request the header names, or else the oldest one waiting, gets the blame;
        # the others were not answered wrongly and may be asked again.
        pending = self.waiting.pop(tid, None)
        if pending is None and self.waiting:
            pending = self.waiting.pop(next(iter(self.waiting)))
        if pending is not None:
            pending.settle()
            pending.fail(ReplyMismatch(reason, in_sync=False))
        self._reset()

    def _reset(self) -> None:
        self.closed = True
        self._close_transport()
        self._fail_all(Resend())

    def _close_transport(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if self.direct is None:
            transport.close()
            return
        # Off the loop: asyncio transports are not thread-safe, so the loop closes it
        # (and the socket with it); nothing here touches the socket again.
        self.direct = None
        assert self.loop is not None
        self.loop.call_soon_threadsafe(transport.close)

    def _lost(self, exc: Exception | None) -> None:
        # Off the loop, what connection_lost() is on it: the peer closed, or the socket
        # failed. The loop is not reading, so it would not have heard.
        self.closed = True
        self._close_transport()
        self._fail_all(Closed())

    def _expire_direct(self, now: float) -> None:
        # Off the loop, what the deadline timer and the straggler timers do on it.
        for pending in self.waiting.values():
            if pending.done:
                continue
            if pending.deadline <= now:
                pending.fail(TimeoutError())
            elif pending.due <= now:
                pending.fail(Dropped())

    def _expire_due(self, due: float) -> None:
        # Fails the requests whose deadline is this timer's, then waits for the next one.
        self._deadline_timer = None
        following = None
        for pending in self.waiting.values():
            if pending.deadline <= due:
                pending.fail(TimeoutError())
            elif following is None or pending.deadline < following:
                following = pending.deadline
        if following is not None and not self.closed:
            loop = asyncio.get_running_loop()
            self._deadline_timer = loop.call_at(following, self._expire_due, following)

    def _fail_all(self, exc: Exception) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        waiting, self.waiting = self.waiting, {}
        for pending in waiting.values():
            pending.settle()
            pending.fail(exc)


def _dropped(pending: Pending) -> None:
    pending.fail(Dropped())
