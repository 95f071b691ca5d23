"""One TCP connection's bytes for the Modbus TCP transport, every wait bounded by a deadline.

The socket is non-blocking and waits go through a selector with the time left to the
request's deadline, so a device that sends half a frame, or nothing, costs at most that
time; bytes are taken from a receive buffer in exact sizes (a header, then a body).
"""

from __future__ import annotations

import selectors
import socket
import time

__all__ = ["Closed", "DeadlinePassed", "Wire"]

_RECV_SIZE = 4096
_MAX_DISCARD = 65536


class Closed(Exception):
    """The device closed the connection."""


class DeadlinePassed(Exception):
    """The deadline passed while waiting on the socket."""


class Wire:
    """An open TCP connection: exact reads, bounded writes, and a way to drop stale bytes."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._socket = sock
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._buffer = bytearray()

    @classmethod
    def open(cls, host: str, port: int, timeout: float) -> Wire:
        """Connect within ``timeout`` seconds (OSError as :func:`socket.create_connection`)."""
        return cls(socket.create_connection((host, port), timeout=timeout))

    @property
    def pending(self) -> int:
        """Bytes received and not yet taken (part of a frame, after a timeout)."""
        return len(self._buffer)

    def discard_waiting(self) -> int | None:
        """Drop every byte received so far: how many, or None if the connection is no good.

        No good: closed by the device, or sending without pause (more than
        ``_MAX_DISCARD`` bytes), which no request of ours asked for.
        """
        dropped = len(self._buffer)
        self._buffer.clear()
        while dropped <= _MAX_DISCARD:
            try:
                chunk = self._socket.recv(_RECV_SIZE)
            except BlockingIOError:
                return dropped
            except OSError:
                return None
            if not chunk:
                return None
            dropped += len(chunk)
        return None

    def send(self, data: bytes, deadline: float) -> None:
        """Send all of ``data`` by monotonic ``deadline``."""
        view = memoryview(data)
        while view:
            try:
                view = view[self._socket.send(view) :]
            except BlockingIOError:
                # The send buffer is full (the device stopped reading): wait for room.
                self._selector.modify(self._socket, selectors.EVENT_WRITE)
                try:
                    self._wait(deadline)
                finally:
                    self._selector.modify(self._socket, selectors.EVENT_READ)

    def take(self, size: int, deadline: float) -> bytes:
        """Exactly ``size`` bytes, waiting for them until monotonic ``deadline``.

        Raises
        ------
        DeadlinePassed
            Fewer than ``size`` bytes arrived in time (those that did stay buffered).
        Closed
            The device closed the connection first.
        """
        buffer = self._buffer
        while len(buffer) < size:
            self._wait(deadline)
            try:
                chunk = self._socket.recv(_RECV_SIZE)
            except BlockingIOError:
                continue
            if not chunk:
                raise Closed
            buffer += chunk
        data = bytes(buffer[:size])
        del buffer[:size]
        return data

    def close(self) -> None:
        """Close the socket."""
        self._selector.close()
        self._socket.close()

    def _wait(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._selector.select(remaining):
            raise DeadlinePassed
