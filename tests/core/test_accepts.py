"""A listening server closed right after an accept: no connection is left open."""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import warnings
from collections.abc import Awaitable, Callable

from bifrost._accepts import close_listener

Close = Callable[[asyncio.Server], Awaitable[None]]


async def _plain_close(server: asyncio.Server) -> None:
    server.close()


def _unclosed_after_closing(close: Close, rounds: int = 8) -> int:
    """ResourceWarnings for sockets left open when ``close`` ends a just-accepted round.

    Each round connects a client, lets the loop take 0-3 steps (two is the step at which
    the accept's transport task runs after the coroutine, the window on Python 3.11),
    closes the listener with ``close`` and then every connection the handler saw.
    """

    async def run() -> None:
        writers: list[asyncio.StreamWriter] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)

        for attempt in range(rounds):
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            client = socket.create_connection(("127.0.0.1", port), timeout=2)
            for _ in range(attempt % 4):
                await asyncio.sleep(0)
            await close(server)
            for _ in range(8):
                await asyncio.sleep(0)
            for writer in writers:
                writer.close()
            writers.clear()
            await asyncio.sleep(0.01)
            client.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(run())
        gc.collect()
    return sum(issubclass(w.category, ResourceWarning) for w in caught)


def test_close_listener_leaves_no_accepted_connection_open():
    assert _unclosed_after_closing(close_listener) == 0


def test_a_plain_close_in_the_same_window_leaks_on_this_python():
    # What close_listener guards against; if a later Python fixes it, this test says so.
    if sys.version_info < (3, 12):
        assert _unclosed_after_closing(_plain_close) > 0
