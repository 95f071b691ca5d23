"""One Modbus TCP connection on the event loop: MBAP frames cut from the stream, matched by id.

An :class:`asyncio.Protocol`: bytes are taken as they arrive (no thread, no blocking
read), cut into frames by the MBAP header, and each frame is handed to the request
waiting for its transaction id, after the reply checks of
:mod:`bifrost.protocols.modbus.pdu`. A frame whose id no request waits for (a late
reply, a duplicate, another connection's reply forwarded by a gateway) is dropped and
counted. A header whose protocol id or length cannot be right means the stream is no
longer known to be cut at frame boundaries: the connection is closed.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from typing import Any

from bifrost.protocols.modbus.pdu import Reply, ReplyMismatch, Request, check_reply

__all__ = ["MBAP", "Closed", "Dropped", "MbapStream", "Pending", "Resend"]

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length, unit id
_HEADER = MBAP.size
_MAX_LENGTH = 254  # unit id + the largest PDU (253 bytes)
# Bytes a device may send while no request of ours waits before the connection counts as
# flooding (sending without being asked); it is then closed and reopened on demand.
MAX_IDLE_BYTES = 65536
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
    """One request on the wire, waiting for its reply."""

    __slots__ = ("deadline", "future", "request", "sent", "seq", "straggler", "tid")

    def __init__(self, request: Request, tid: int, future: asyncio.Future[Reply]) -> None:
        self.request = request
        self.tid = tid
        self.future = future
        self.sent = 0.0
        self.seq = 0  # the order it went on the wire
        self.deadline = 0.0  # on the loop's clock; the connection's deadline timer fails it
        self.straggler: asyncio.TimerHandle | None = None

    def settle(self) -> None:
        """Cancel the straggler timer (the outcome is known)."""
        if self.straggler is not None:
            self.straggler.cancel()


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

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # noqa: D102
        self.transport = transport

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
                if tid in self._recent:
                    self.duplicates += 1
                continue
            if self._answered(pending, unit, pdu) and (
                answered is None or pending.seq > answered.seq
            ):
                answered = pending
            if self.closed:
                return
            waiting = self.waiting
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
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        deadline = loop.time() + timeout
        waiting = self.waiting
        frames = []
        for pending in pendings:
            request = pending.request
            frames.append(
                MBAP.pack(pending.tid, 0, len(request.pdu) + 1, request.unit) + request.pdu
            )
            pending.sent = now
            pending.seq = self._seq = self._seq + 1
            pending.deadline = deadline
            waiting[pending.tid] = pending
        timer = self._deadline_timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._deadline_timer = loop.call_at(deadline, self._expire_due, deadline)
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

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
        if self.transport is not None:
            self.transport.close()
        self._fail_all(Closed())

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
        future = pending.future
        request = pending.request
        try:
            if unit != request.unit:
                raise ReplyMismatch(f"unit id {unit} in the reply, expected {request.unit}")
            reply = check_reply(request, pdu)
        except ReplyMismatch as exc:
            if not future.done():
                future.set_exception(exc)
            if not exc.in_sync:
                self._reset()
            return False
        if not future.done():
            future.set_result(reply)
        return True

    def _watch_stragglers(self, answered: Pending) -> None:
        # Requests sent before the one just answered are still waiting: a device that
        # answers in order has dropped them. They get a grace scaled to the round trip
        # the answered one took (a device may answer out of order), then count as
        # dropped rather than waiting out the whole timeout.
        assert self.straggler is not None
        loop = asyncio.get_running_loop()
        grace = self.straggler(time.monotonic() - answered.sent)
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
            if not pending.future.done():
                pending.future.set_exception(ReplyMismatch(reason, in_sync=False))
        self._reset()

    def _reset(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._fail_all(Resend())

    def _expire_due(self, due: float) -> None:
        # Fails the requests whose deadline is this timer's, then waits for the next one.
        self._deadline_timer = None
        following = None
        for pending in self.waiting.values():
            if pending.deadline <= due:
                if not pending.future.done():
                    pending.future.set_exception(TimeoutError())
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
            if not pending.future.done():
                pending.future.set_exception(exc)


def _dropped(pending: Pending) -> None:
    if not pending.future.done():
        pending.future.set_exception(Dropped())
