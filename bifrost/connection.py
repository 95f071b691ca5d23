"""The sync :class:`Connection`: each method is one call onto the background loop.

It wraps an :class:`~bifrost.aio.AsyncConnection` living on the portal's loop thread, so
it works alike in scripts, IPython and Jupyter kernels (whose own loop is running).

Reads are the exception where they can be: a Modbus TCP connection that nothing else
uses (no recording, subscription, async call or other thread at that moment) is read on
the caller's own thread, with no hand-over to the loop and back, the loop having handed
the socket over after the read before (:class:`bifrost._portal.Handover`). The read's
coroutine is the same one the loop would run, driven here without a loop: nothing in it
waits for the loop on that path. Where something would (a reconnect, a busy device's
pauses), the coroutine suspends, and the rest of it, requests in flight included, goes
on on the loop as a hop would have run it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import pandas as pd

from bifrost._portal import Handover, portal, user_facing
from bifrost.aio import AsyncConnection, Errors, RecordMode, TagSource, _record_spans
from bifrost.exceptions import TimeoutError as BifrostTimeoutError
from bifrost.frames import read_frame
from bifrost.model import Tag
from bifrost.protocols.base import TimestampKind
from bifrost.recording import Recording
from bifrost.recording.recorder import RowSink
from bifrost.recording.timing import Span, seconds
from bifrost.results import ReadResult
from bifrost.subscriptions import Subscription
from bifrost.tags import TagLike, TagTable

if TYPE_CHECKING:
    from bifrost.protocols.modbus.scan import ScanResult

__all__ = ["Connection", "RecordingInterrupted", "connect"]

T = TypeVar("T")
# How long a sync scan() may run: a whole address space of a slow device (Ctrl-C stops it).
SCAN_WAIT_S = 3600.0
_CANCEL_GRACE = 2.0  # seconds a cancelled read gets to unwind (as bifrost._portal's calls)


class Connection:
    """A connection to one device; see :func:`bifrost.connect`.

    Parameters are those of :class:`bifrost.aio.AsyncConnection`, plus ``call_timeout``:
    the longest a single call may take before it is cancelled (default: ten request
    timeouts, at least 30 s).
    """

    def __init__(
        self,
        url: str,
        *,
        tags: TagSource = None,
        writable: bool = False,
        timeout: float = 3.0,
        call_timeout: float | None = None,
        **options: Any,
    ) -> None:
        self._async = AsyncConnection(url, tags=tags, writable=writable, timeout=timeout, **options)
        self._call_timeout = call_timeout if call_timeout is not None else max(30.0, 10 * timeout)
        self._holds_portal = False

    def _call(self, coro: Coroutine[Any, Any, T], extra: float = 0.0) -> T:
        # extra: seconds the call waits on purpose (record_events' duration).
        if not self._holds_portal:
            coro.close()
            raise_closed(self._async.url)
        return portal.call(coro, self._call_timeout + extra)

    def _hop(self, coro: Coroutine[Any, Any, T]) -> T:
        # Reads: the same contract as _call (cancelled on timeout or Ctrl-C, unwound
        # before returning), with the coroutine's task started from the loop's own
        # callback and its end signalled from inside it, not through chained futures.
        # That saves two loop iterations of a hop (~50-100 us on a loaded 2-core host),
        # as much as a short read's whole round trip.
        if not self._holds_portal:
            coro.close()
            raise_closed(self._async.url)
        if portal.in_loop_thread():
            return portal.call(coro, self._call_timeout)  # refuses it, as every call does
        return _run_on(portal.loop, coro, self._call_timeout)

    def _read(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        # A read: on this thread if the connection is ours alone right now, else a hop
        # after which the loop hands the socket over if nothing else is using it.
        handover = self._async._handover
        if handover is None or not self._holds_portal:
            return self._hop(make())
        alone = self._async._alone
        limit = time.monotonic() + self._call_timeout
        coro = make()
        moving = retry = False
        try:
            if portal.in_loop_thread():
                return self._hop(coro)  # refused, as every sync call from the loop is
            if not handover.take(alone, limit):
                return _run_on(portal.loop, _Offering(coro, handover, alone), self._call_timeout)
            # A thread whose own loop is running (a Jupyter kernel's: cells run in it)
            # reads as any other thread: asyncio's calls in the read must not take that
            # loop for theirs, so it is not this thread's running loop meanwhile.
            running = asyncio._get_running_loop()
            if running is not None:
                asyncio._set_running_loop(None)
            try:
                first = coro.send(None)
            except StopIteration as stop:
                return cast(T, stop.value)
            except asyncio.CancelledError:
                # The call's own time ran out off the loop (the transport says so).
                raise BifrostTimeoutError(
                    f"the call did not finish within {self._call_timeout:g} s and was cancelled"
                ) from None
            except RuntimeError as exc:
                if str(exc) != "no running event loop":
                    raise
                # Something in it asked for the running loop (none here). It has
                # unwound, and a read is safe to ask again: through the loop.
                retry = True
            else:
                # It suspended, waiting for the loop: the rest of it runs there.
                handover.move_to_loop()
                moving = True
            finally:
                if running is not None:
                    asyncio._set_running_loop(running)
        finally:
            # Whatever ended the read here (Ctrl-C included), this thread lets go; the
            # handover's own record of who holds it is what counts.
            if not moving and handover.owned_here:
                handover.give_back()
        if retry:
            return _run_on(portal.loop, _Offering(make(), handover, alone), self._call_timeout)
        rest = _Rest(coro, first, handover, alone)
        return _run_on(portal.loop, rest, max(0.0, limit - time.monotonic()))

    # -- lifecycle ------------------------------------------------------------------------
    @user_facing
    def open(self) -> None:
        """Connect to the device (``bifrost.connect`` already did)."""
        if not self._holds_portal:
            portal.acquire()
            self._holds_portal = True
        try:
            self._call(self._async.open())
        except BaseException:
            self.close()
            raise

    @user_facing
    def close(self) -> None:
        """Close the connection; the last one closed stops bifrost's loop thread."""
        if not self._holds_portal:
            return
        try:
            portal.call(self._async.close(), self._call_timeout)
        finally:
            self._holds_portal = False
            portal.release()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- properties (no I/O) --------------------------------------------------------------
    @property
    def url(self) -> str:
        """The device URL."""
        return self._async.url

    @property
    def protocol(self) -> str:
        """``modbus``, ``s7`` or ``opcua``."""
        return self._async.protocol

    @property
    def endpoint(self) -> str:
        """Host and port (or serial device) of the device."""
        return self._async.endpoint

    @property
    def writable(self) -> bool:
        """Whether writes are allowed on this connection."""
        return self._async.writable

    @property
    def connected(self) -> bool:
        """Whether the transport is up."""
        return self._holds_portal and self._async.connected

    @property
    def timeout(self) -> float:
        """Seconds allowed for connecting and for each request."""
        return self._async.timeout

    @property
    def tags(self) -> TagTable:
        """The connection's tag table."""
        return self._async.tags

    @tags.setter
    @user_facing
    def tags(self, value: TagSource) -> None:
        self._async.tags = value

    @property
    def aio(self) -> AsyncConnection:
        """The async connection underneath (lives on bifrost's loop thread)."""
        return self._async

    # -- verbs: one loop hop each ---------------------------------------------------------
    @user_facing
    def resolve(self, tags: TagLike | Sequence[TagLike]) -> list[Tag]:
        """Turn names, Tags and raw addresses into Tags (no I/O)."""
        return self._async.resolve(tags)

    @user_facing
    def explain(self, tags: TagLike | Sequence[TagLike]) -> pd.DataFrame:
        """The requests a read of ``tags`` sends, one row each (no I/O)."""
        return self._async.explain(tags)

    @user_facing
    def read_result(self, tags: TagLike | Sequence[TagLike]) -> ReadResult:
        """Read ``tags`` and return the columnar result."""
        return self._read(lambda: self._async.read_result(tags))

    @user_facing
    def read(
        self,
        tags: TagLike | Sequence[TagLike],
        *,
        errors: Errors = "raise",
        timestamp: TimestampKind = "source",
    ) -> pd.DataFrame:
        """Read tags in one planned batch; see :meth:`AsyncConnection.read`."""
        result, layout = self._read(lambda: self._async._read_columns(tags, errors, timestamp))
        return read_frame(result, layout)

    @user_facing
    def read_value(self, tag: TagLike) -> Any:
        """Read one tag and return its value."""
        return self._read(lambda: self._async.read_value(tag))

    @user_facing
    def write(
        self, values: Mapping[TagLike, Any], *, exact: bool = False, dry_run: bool = False
    ) -> pd.DataFrame | None:
        """Write values after checking all of them; see :meth:`AsyncConnection.write`.

        ``dry_run=True`` sends nothing and returns the requests a write would send.
        """
        return self._call(self._async.write(values, exact=exact, dry_run=dry_run))

    @user_facing
    def record(
        self,
        tags: TagLike | Sequence[TagLike],
        *,
        interval: Span = "1s",
        duration: Span | None = None,
        background: bool = False,
        path: str | os.PathLike[str] | None = None,
        progress: bool = True,
        mode: RecordMode = "poll",
        flush_interval: Span = "1s",
        sinks: Sequence[RowSink] = (),
    ) -> Recording:
        """Sample tags on a fixed interval; see :meth:`AsyncConnection.record`.

        A blocking recording shows a progress bar. Ctrl-C (or a notebook's interrupt)
        stops it and raises :class:`RecordingInterrupted`, a ``KeyboardInterrupt``
        carrying what was recorded (``.recording``, marked ``interrupted``), so a
        script or "Run All" stops there. In IPython and Jupyter (``import bifrost`` or
        ``%load_ext bifrost``) the partial recording is still assigned to the cell's
        variable (``rec = plc.record(...)`` leaves it in ``rec``; a bare call leaves it
        in ``_``), with one line saying so.
        """
        _record_spans(interval, duration, background)  # fail before anything starts
        recording = self._call(
            self._async.record(
                tags,
                interval=interval,
                duration=duration,
                background=True,
                path=path,
                progress=progress,
                mode=mode,
                flush_interval=flush_interval,
                sinks=sinks,
            )
        )
        if not background:
            _wait_with_progress(recording, progress)
        return recording

    @property
    def recordings(self) -> list[Recording]:
        """Recordings running on this connection."""
        return self._async.recordings

    @user_facing
    def subscribe(
        self,
        tags: TagLike | Sequence[TagLike],
        callback: Callable[[pd.DataFrame], Any],
        *,
        interval: Span = "100ms",
        queue_size: int | None = None,
        deadband: float = 0.0,
        sinks: Sequence[RowSink] = (),
    ) -> Subscription:
        """Deliver changes of ``tags`` to ``callback``; see :meth:`AsyncConnection.subscribe`."""
        return self._call(
            self._async.subscribe(
                tags,
                callback,
                interval=interval,
                queue_size=queue_size,
                deadband=deadband,
                sinks=sinks,
            )
        )

    @user_facing
    def browse(self, path: str | None = None, depth: int = 1) -> pd.DataFrame:
        """The device's address space or the tag table; see :meth:`AsyncConnection.browse`."""
        return self._call(self._async.browse(path, depth))

    @user_facing
    def info(self) -> dict[str, Any]:
        """Device identification."""
        return self._call(self._async.info())

    @user_facing
    def read_history(
        self,
        tags: TagLike | Sequence[TagLike],
        start: Any,
        end: Any = None,
        *,
        max_values: int | None = None,
        aggregate: str | None = None,
        interval: Span | None = None,
        errors: Errors = "raise",
    ) -> pd.DataFrame:
        """Stored values (OPC UA HistoryRead); see :meth:`AsyncConnection.read_history`."""
        return self._call(
            self._async.read_history(
                tags,
                start,
                end,
                max_values=max_values,
                aggregate=aggregate,
                interval=interval,
                errors=errors,
            )
        )

    @user_facing
    def subscribe_events(
        self, source: str, callback: Callable[[pd.DataFrame], Any]
    ) -> Subscription:
        """Deliver a node's events to ``callback``; see :meth:`AsyncConnection.subscribe_events`."""
        return self._call(self._async.subscribe_events(source, callback))

    @user_facing
    def record_events(self, source: str, *, duration: Span = "10s") -> pd.DataFrame:
        """Collect a node's events for ``duration``; see :meth:`AsyncConnection.record_events`."""
        wait = seconds(duration, "duration")
        return self._call(self._async.record_events(source, duration=duration), extra=wait)

    @user_facing
    def acknowledge(self, event_id: bytes, comment: str = "") -> None:
        """Acknowledge an alarm (writable connections); see :meth:`AsyncConnection.acknowledge`."""
        self._call(self._async.acknowledge(event_id, comment))

    @user_facing
    def call(self, object_path: str, method: str, *args: Any) -> Any:
        """Call an OPC UA method, arguments checked first; see :meth:`AsyncConnection.call`."""
        return self._call(self._async.call(object_path, method, *args))

    @user_facing
    def scan(
        self,
        table: str | Sequence[str] = "hr",
        start: int = 0,
        stop: int = 65535,
        unit: int | None = None,
        *,
        resolution: int = 64,
        pipeline: int = 8,
        timeout: float | None = None,
    ) -> ScanResult:
        """Readable ranges and limits of a Modbus device; see :meth:`AsyncConnection.scan`."""
        # A scan is thousands of reads: bounded by their own timeouts, not the call's.
        return self._call(
            self._async.scan(
                table,
                start,
                stop,
                unit,
                resolution=resolution,
                pipeline=pipeline,
                timeout=timeout,
            ),
            extra=SCAN_WAIT_S,
        )

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncConnection", "Connection", 1)

    def _repr_html_(self) -> str:
        from bifrost._html import connection_html

        return connection_html(self)


class RecordingInterrupted(KeyboardInterrupt):
    """A blocking :meth:`Connection.record` was interrupted (Ctrl-C, the kernel's stop).

    A ``KeyboardInterrupt``, so that ``except Exception`` does not swallow it and a
    notebook's "Run All" stops at the cell; the samples recorded until then are kept.

    Attributes
    ----------
    recording
        The partial :class:`~bifrost.Recording` (stopped, ``interrupted`` set).
    elapsed_s
        Seconds from the start of the recording to its end.
    kept_in
        Where the recording was left for the user: ``"rec"`` when IPython assigned it to
        the cell's variable, else a description (set by whoever stores it).
    """

    short_traceback = True  # raised from the caller's frame (bifrost._portal.user_facing)

    def __init__(self, recording: Recording, elapsed_s: float) -> None:
        self.recording = recording
        self.elapsed_s = elapsed_s
        self.kept_in = "the exception's .recording"
        super().__init__(recording)

    def __str__(self) -> str:
        samples = len(self.recording)
        noun = "sample" if samples == 1 else "samples"
        return (
            f"recording interrupted after {self.elapsed_s:.1f} s — "
            f"{samples:,} {noun} kept in {self.kept_in}"
        )


class _Hop:
    """One coroutine run on the loop for a waiting thread (see :meth:`Connection._hop`)."""

    __slots__ = ("coro", "done", "outcome", "started", "task")

    def __init__(self, coro: Coroutine[Any, Any, Any] | _Rest[Any] | _Offering[Any]) -> None:
        self.coro = coro
        self.done = threading.Lock()
        self.done.acquire()
        self.task: asyncio.Task[None] | None = None
        self.started = False
        self.outcome: tuple[bool, Any] = (False, None)

    async def run(self) -> None:
        self.started = True
        try:
            self.outcome = (True, await self.coro)
        except BaseException as exc:
            self.outcome = (False, exc)
        finally:
            self.done.release()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if not self.started:
            # Cancelled before its first step, the task never runs run()'s finally.
            self.coro.close()
            self.done.release()


def _run_on(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, T] | _Rest[T] | _Offering[T],
    timeout: float,
) -> T:
    hop = _Hop(coro)
    loop.call_soon_threadsafe(hop.start)
    try:
        finished = hop.done.acquire(timeout=timeout)
    except BaseException:
        # KeyboardInterrupt in a notebook: stop the work, don't leave it running.
        loop.call_soon_threadsafe(hop.cancel)
        hop.done.acquire(timeout=_CANCEL_GRACE)
        raise
    if not finished:
        loop.call_soon_threadsafe(hop.cancel)
        hop.done.acquire(timeout=_CANCEL_GRACE)
        raise BifrostTimeoutError(f"the call did not finish within {timeout:g} s and was cancelled")
    ok, value = hop.outcome
    if ok:
        return cast(T, value)
    raise value


class _Offering(Generic[T]):
    """A read run by a hop; once its use of the loop has ended, the socket is offered.

    (:meth:`bifrost._portal.Handover.offer`: the next read may then be off the loop.)
    Closed unstarted (a hop cancelled before its first step), it closes the read.
    """

    __slots__ = ("_alone", "_coro", "_handover")

    def __init__(
        self, coro: Coroutine[Any, Any, T], handover: Handover, alone: Callable[[], bool]
    ) -> None:
        self._coro = coro
        self._handover = handover
        self._alone = alone

    def __await__(self) -> Generator[Any, Any, T]:
        try:
            return (yield from self._coro.__await__())
        finally:
            self._handover.offer(self._alone)

    def close(self) -> None:
        self._coro.close()


class _Rest(Generic[T]):
    """The rest of a read that suspended off the loop (it yielded ``first``), for a hop.

    On the loop the socket is taken back first (requests still in flight get the loop's
    timers), then the task running it drives the coroutine as if it had always run
    it: what it yields, the task waits for; what the task sends or throws (a
    cancellation), the coroutine gets. Closed unstarted (a hop cancelled before its
    first step), it closes the read too, which unwinds on the loop's thread.
    """

    __slots__ = ("_coro", "_steps")

    def __init__(
        self,
        coro: Coroutine[Any, Any, T],
        first: Any,
        handover: Handover,
        alone: Callable[[], bool],
    ) -> None:
        self._coro = coro
        self._steps = _drive(coro, first, handover, alone)

    def __await__(self) -> Generator[Any, Any, T]:
        return self._steps

    def close(self) -> None:
        self._steps.close()
        self._coro.close()


def _drive(
    coro: Coroutine[Any, Any, T], first: Any, handover: Handover, alone: Callable[[], bool]
) -> Generator[Any, Any, T]:
    try:
        handover.socket.take_back()
        yielded = first
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return cast(T, stop.value)
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return cast(T, stop.value)
    finally:
        handover.moved()
        handover.offer(alone)


def _wait_with_progress(recording: Recording, progress: bool) -> None:
    from bifrost.recording.progress import progress_bar

    total = recording.metadata.get("cycles")
    try:
        with progress_bar(total, enabled=progress) as bar:
            while not recording._finished.wait(0.1):
                bar(len(recording))
            bar(len(recording))
    except KeyboardInterrupt:
        recording.interrupted = True
        recording.stop()
        recording.wait()
        elapsed = (recording.stopped_ns or 0) - (recording.started_ns or 0)
        raise RecordingInterrupted(recording, max(0, elapsed) / 1e9) from None
    recording.wait()


def raise_closed(url: str) -> None:
    """Raise the error for a call on a closed connection."""
    from bifrost.exceptions import ConnectionError

    raise ConnectionError(f"the connection to {url} is closed; connect again")


@user_facing
def connect(
    url: str,
    *,
    tags: TagSource = None,
    writable: bool = False,
    timeout: float = 3.0,
    **options: Any,
) -> Connection:
    """Connect to a device and return a sync :class:`Connection`.

    Parameters
    ----------
    url
        ``modbus://127.0.0.1:5020``, ``modbus+rtu:///dev/ttyUSB0?baudrate=19200&parity=E``...
    tags
        A :class:`TagTable`, Tags, or the path of a CSV/YAML tag file.
    writable
        Allow writes (read-only otherwise).
    timeout
        Seconds for connecting and for each request.
    **options
        Protocol options, e.g. ``unit=3`` for Modbus.

    Examples
    --------
    >>> plc = bifrost.connect("modbus://127.0.0.1:5020", unit=1)  # doctest: +SKIP
    >>> plc.read(["hr:0:float32"])  # doctest: +SKIP
    """
    connection = Connection(url, tags=tags, writable=writable, timeout=timeout, **options)
    connection.open()
    return connection
