"""One worker thread per connection for protocol libraries whose clients block.

A read plan is a short sequence of request/response round trips. Run as one job on the
connection's own thread with a blocking client, it costs one thread hop per user call
and the lowest latency per round trip; the event loop never blocks, and because every
call to one device goes through its single worker, requests never interleave on the
wire. Modbus and S7 share this class, so both cancel the same way.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bifrost.exceptions import BifrostError

__all__ = ["HANDOVER_LEAD", "Abandoned", "BlockingWorker"]

T = TypeVar("T")
# Seconds before a cycle is due that a recorder hands it to a driver waiting on its
# worker thread, so that the hand-over to the thread does not delay the request.
HANDOVER_LEAD = 0.002


class Abandoned(BifrostError):
    """The caller gave up (cancelled); the job stops before its next request."""


class BlockingWorker:
    """A single thread that runs a connection's blocking jobs one after another.

    Cancellation: when the awaiting task is cancelled, the job's ``abandon`` event is set
    and the job stops before its next request (:meth:`check`); a request already on the
    wire finishes within the client's own timeout. A job that overruns a ``timeout``
    given to :meth:`run` is left to end by itself on its thread, and the next job gets a
    fresh thread, so one stuck library call never blocks the connection.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        """Whether the thread has been started and not shut down."""
        return self._executor is not None

    @staticmethod
    def check(abandon: threading.Event) -> None:
        """Raise :class:`Abandoned` if the caller has given up (call before each request)."""
        if abandon.is_set():
            raise Abandoned("the call was cancelled")

    async def run(self, job: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``job(abandon, *args)`` on the worker thread and await its result.

        Raises
        ------
        builtins.TimeoutError
            When ``timeout`` passes first; the caller words the message.
        """
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=self.name
            )
        abandon = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self._executor, job, abandon, *args)
        try:
            if timeout is not None:
                # asyncio.wait, not wait_for: a TimeoutError the job raises itself (a
                # socket timeout) must not be taken for this deadline passing.
                done, _ = await asyncio.wait({future}, timeout=timeout)
                if not done:
                    abandon.set()
                    self.abandon_thread()
                    raise builtins.TimeoutError(f"{self.name}: no result within {timeout:g} s")
            return await future
        except asyncio.CancelledError:
            abandon.set()
            raise

    def abandon_thread(self) -> None:
        """Give up on the current thread (it ends by itself); the next job starts a new one."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def shutdown(self, last: Callable[[], None] | None = None, timeout: float = 5.0) -> None:
        """Run ``last`` (closing the client) on the thread, then stop it (idempotent)."""
        executor = self._executor
        if executor is None:
            return
        if last is not None:
            future = asyncio.get_running_loop().run_in_executor(executor, last)
            try:
                await asyncio.wait_for(future, timeout)
            except builtins.TimeoutError:
                self.abandon_thread()
                return
        self._executor = None
        # The worker is idle now, so joining it takes no time and leaves no thread behind.
        executor.shutdown(wait=True)
