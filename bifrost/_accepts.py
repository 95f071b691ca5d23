"""Closing a listening asyncio server without leaking a connection it just accepted.

asyncio accepts a socket in one step of the loop and builds its transport in a task a
step later. On Python 3.11, if ``Server.close()`` runs in between, that transport fails
to attach to the closed server and the error is swallowed: the socket stays open, no
protocol ever sees it, and it is reported unclosed when collected. So bifrost's
in-process servers (the simulated plant's, the fault proxy) first stop accepting, let
the accepts already under way finish, and only then close the server; the connections
that came in are then the server's like any other, and closed with them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["close_listener", "finish_accepts"]

# The transport task, then connection_made, then a stream handler's first step: three
# steps of the loop; more for margin.
_STEPS = 8


async def finish_accepts() -> None:
    """Let connections already accepted reach their protocol (a few loop steps)."""
    for _ in range(_STEPS):
        await asyncio.sleep(0)


async def close_listener(server: Any) -> None:
    """Stop ``server`` (an ``asyncio.Server``) accepting, finish its accepts, close it.

    Anything else (None, a server already closed) is left alone.
    """
    if not isinstance(server, asyncio.AbstractServer):
        return
    loop = asyncio.get_running_loop()
    for sock in getattr(server, "sockets", None) or ():
        # A loop without readers (Windows' proactor) keeps accepting until close().
        with contextlib.suppress(NotImplementedError, ValueError, OSError):
            loop.remove_reader(sock.fileno())
    await finish_accepts()
    server.close()
