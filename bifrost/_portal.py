"""The single background event-loop thread that runs every sync call.

Drivers are asyncio code. A sync :class:`~bifrost.connection.Connection` submits one
coroutine per user call to this loop and waits for it with a timeout; on timeout (or
Ctrl-C) the coroutine is cancelled, never left running. Because the loop lives on its
own thread, this works the same in a script, in IPython, and inside a Jupyter kernel
whose own loop is already running, and background work (recordings) keeps its schedule
while the main thread computes.

The thread starts with the first user (connection) and stops with the last one, so
closing every connection leaves no thread behind.

Errors cross from the loop thread to the caller here, so this is also where their
tracebacks are shortened: a :class:`~bifrost.BifrostError` raised by a call decorated
with :func:`user_facing` is raised from the caller's frame, without the portal's,
concurrent.futures' and the driver's frames (50-90 lines for a misspelt tag name). Its
``__cause__`` (a driver library's exception) stays, without frames. :func:`debug` (or
``BIFROST_DEBUG=1`` in the environment) keeps every frame.

A connection whose socket a caller's thread may use without the loop (Modbus TCP reads,
zero thread hand-overs) is shared through a :class:`Handover`: either one caller's thread
holds it, or any number of uses on the loop, never both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar

from bifrost.exceptions import BifrostError
from bifrost.exceptions import TimeoutError as BifrostTimeoutError

__all__ = ["Handover", "OffLoop", "Portal", "debug", "portal", "user_facing"]

T = TypeVar("T")
P = ParamSpec("P")

_debug = os.environ.get("BIFROST_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def debug(enabled: bool | None = None) -> bool:
    """Show bifrost's own frames in the tracebacks of its errors (or stop showing them).

    Parameters
    ----------
    enabled
        True: errors keep every frame (the portal's, the driver's) and their causes'
        frames; False: errors of a call are raised from the caller's frame. None only
        reads the setting. The default comes from the environment
        variable ``BIFROST_DEBUG`` (``1`` turns it on).

    Returns
    -------
    bool
        The setting now in force.
    """
    global _debug  # noqa: PLW0603 -- one process-wide switch, like logging's levels
    if enabled is not None:
        _debug = bool(enabled)
    return _debug


def _is_users_business(error: BaseException) -> bool:
    # BifrostErrors, and exceptions that say so (bifrost.connection.RecordingInterrupted).
    return isinstance(error, BifrostError) or bool(getattr(error, "short_traceback", False))


def _shortened(error: BaseException) -> BaseException:
    """``error`` without the frames below the caller's, nor those of its causes."""
    error.__traceback__ = None
    # "During handling of the above exception..." (a CancelledError, a KeyError caught
    # while looking a tag up) is bifrost's business; an explicit cause (`from exc`, a
    # driver library's error) stays, frameless.
    error.__suppress_context__ = True
    seen = {id(error)}
    cause = error.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        cause.__traceback__ = None
        cause = cause.__cause__
    return error


def user_facing(function: Callable[P, T]) -> Callable[P, T]:
    """Decorate a public sync call: its BifrostErrors are raised from the caller's frame.

    The traceback of such an error starts at the caller's line (``plc.read([...])``),
    unless :func:`debug` is on; so does that of an exception whose class sets
    ``short_traceback = True``. Other exceptions (bugs, a plain KeyboardInterrupt) keep
    every frame.
    """

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except BaseException as error:
            if _is_users_business(error):
                # What the call was, for the hint IPython shows (bifrost.jupyter.errors).
                error._bifrost_call = (function.__name__, args[0] if args else None)  # type: ignore[attr-defined]
                if not _debug:
                    _shortened(error)
            # A bare raise adds no entry for this frame: with the traceback cleared, the
            # caller's frame is the first one shown.
            raise

    return call


_CANCEL_GRACE = 2.0  # seconds a cancelled coroutine gets to unwind before we give up waiting


class OffLoop(Protocol):
    """A connection's socket as a :class:`Handover` hands it between the loop and a thread."""

    def hand_over(self) -> bool:
        """On the loop: stop reading the socket there; whether it could."""

    def take_back(self) -> None:
        """On the loop, nobody off it: read the socket there again."""

    def enter(self, limit: float) -> bool:
        """On a caller's thread: start using the socket (False: go through the loop)."""

    def leave(self, moving: bool = False) -> None:
        """On the same thread: stop using it (``moving``: the call goes on on the loop)."""


class Handover:
    """Who uses one connection: one caller's thread off the loop, or the loop, never both.

    Every use on the loop (a call, a recording's start, identification) is bracketed by
    ``async with handover:``, which waits, without blocking the loop, for a thread off
    the loop to finish and takes the socket back. A thread goes off the loop only by
    :meth:`take`, which says no while any use on the loop is under way; the loop hands
    the socket over again (:meth:`offer`) when its last use has ended. The lock here is
    held for a few field updates only, never across I/O.
    """

    def __init__(self, socket: OffLoop) -> None:
        self.socket = socket
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread off the loop
        self._uses = 0  # uses on the loop under way (or waiting for the owner)
        self._waiters: list[asyncio.Future[None]] = []
        self._depth = 0  # brackets entered by the thread off the loop, not yet left

    @property
    def owned_here(self) -> bool:
        """Whether this thread is the one off the loop (its calls' brackets do nothing)."""
        owner = self._owner
        return owner is not None and owner == threading.get_ident()

    def take(self, allowed: Callable[[], bool], limit: float) -> bool:
        """On a caller's thread: hold the connection off the loop until :meth:`give_back`.

        ``allowed`` (asked under the lock) says whether nothing else shares the
        connection; ``limit`` is the monotonic time by which the call must end.
        """
        with self._lock:
            if self._owner is not None or self._uses or not allowed():
                return False
            if not self.socket.enter(limit):
                return False
            self._owner = threading.get_ident()
            return True

    def give_back(self) -> None:
        """End :meth:`take`; uses on the loop that waited for it go on."""
        try:
            self.socket.leave()
        finally:
            self._release(0)

    def move_to_loop(self) -> None:
        """End :meth:`take` for a call that goes on on the loop (it suspended off it).

        Its brackets still open become uses on the loop: they end there, on the loop's
        thread, and count as such until then (nothing goes off the loop meanwhile). So
        does the move itself, until :meth:`moved` (whoever drives the rest calls it).
        """
        try:
            self.socket.leave(moving=True)
        finally:
            self._release(self._depth + 1)

    def moved(self) -> None:
        """On the loop: the call that :meth:`move_to_loop` handed over has ended there."""
        with self._lock:
            self._uses -= 1

    def _release(self, uses: int) -> None:
        with self._lock:
            self._owner = None
            self._uses += uses
            self._depth = 0
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    def offer(self, allowed: Callable[[], bool]) -> bool:
        """On the loop: hand the socket over if no use is under way and ``allowed()``."""
        with self._lock:
            if self._owner is not None or self._uses or not allowed():
                return False
            return self.socket.hand_over()

    def enter_now(self) -> bool:
        """:meth:`__aenter__` without a coroutine, when nothing off the loop holds the socket.

        False (nothing entered): a thread off the loop holds it, or this is that thread;
        ``async with`` then does the waiting. True: a use on the loop is under way, exactly
        as after ``__aenter__``, until :meth:`exit_now`.
        """
        if self.owned_here:
            return False
        with self._lock:
            if self._owner is not None:
                return False
            self._uses += 1
        try:
            self.socket.take_back()
        except BaseException:
            with self._lock:
                self._uses -= 1
            raise
        return True

    def exit_now(self) -> None:
        """End a use on the loop begun by :meth:`enter_now` returning True."""
        with self._lock:
            self._uses -= 1

    async def __aenter__(self) -> None:
        if self.owned_here:
            self._depth += 1
            return
        with self._lock:
            self._uses += 1
            if self._owner is None:
                waiter = None
            else:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
        try:
            while waiter is not None:
                await waiter
                with self._lock:
                    if self._owner is None:
                        waiter = None
                    else:  # woken late: another take() cannot have happened (uses > 0)
                        waiter = asyncio.get_running_loop().create_future()
                        self._waiters.append(waiter)
            self.socket.take_back()
        except BaseException:
            with self._lock:
                self._uses -= 1
                if waiter is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        if self.owned_here:
            self._depth -= 1
            return
        with self._lock:
            self._uses -= 1


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Portal:
    """A reference-counted event loop running on a daemon thread."""

    def __init__(self, name: str = "bifrost-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._users = 0

    @property
    def running(self) -> bool:
        """Whether the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The portal's loop (starting it if needed is the caller's job: :meth:`acquire`)."""
        if self._loop is None:
            raise RuntimeError("the bifrost event loop is not running; call acquire() first")
        return self._loop

    def acquire(self) -> None:
        """Register a user, starting the loop thread if it is not running."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._start()
            self._users += 1

    def release(self) -> None:
        """Unregister a user; the last one stops the loop and joins its thread."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                self._stop()

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name=self._name, daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread is threading.current_thread():
            raise RuntimeError("the bifrost loop cannot be stopped from its own thread")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5.0)

    def in_loop_thread(self) -> bool:
        """Whether the caller runs on the portal's own thread."""
        return self._thread is threading.current_thread()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result.

        Parameters
        ----------
        coro
            The coroutine; it is closed unrun if the loop is not running.
        timeout
            Seconds to wait; on expiry the coroutine is cancelled and
            :class:`bifrost.TimeoutError` is raised.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "a sync bifrost call was made from the bifrost loop thread; "
                "use the async API (bifrost.aio) inside coroutines"
            )
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the bifrost event loop is not running")
        finished = threading.Event()

        async def runner() -> T:
            try:
                return await coro
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(runner(), loop)
        try:
            # wait() rather than result(timeout): the coroutine may itself raise a
            # TimeoutError (a subclass of the builtin), which must reach the caller as is.
            done, _ = concurrent.futures.wait([future], timeout)
        except BaseException:
            # KeyboardInterrupt in a notebook: stop the work, don't leave it running.
            _cancel_and_wait(future, finished)
            raise
        if not done:
            _cancel_and_wait(future, finished)
            raise BifrostTimeoutError(
                f"the call did not finish within {timeout:g} s and was cancelled"
            )
        return future.result()


def _cancel_and_wait(future: concurrent.futures.Future[Any], finished: threading.Event) -> None:
    future.cancel()
    # The concurrent future reports "cancelled" at once, but the task is only cancelled
    # on the loop thread: wait until the coroutine has unwound so nothing keeps running.
    finished.wait(_CANCEL_GRACE)


portal = Portal()
"""The process-wide portal shared by every sync connection."""
