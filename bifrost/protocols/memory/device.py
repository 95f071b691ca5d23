"""The in-memory device: the other end of every ``memory://name`` connection.

A :class:`MemoryDevice` is a dict of raw values (``device["tank.level"] = 2.5``) with
the faults of a real device on demand: latency, the next requests failing, the device
going away and coming back, bad quality on single values, read-only values. Devices
are shared by name within the process: every connection to ``memory://name`` talks to
the one device of that name, created by whichever asks first.

The device plays the server: it counts and logs what reaches it and raises the
standard library's exceptions (``ConnectionRefusedError``, ``ConnectionResetError``,
the faults it was given) and :class:`ReadOnlyKey`; the driver translates them into
bifrost's exception tree, as every driver does with its library's.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from bifrost.exceptions import ConfigurationError
from bifrost.model import Quality
from bifrost.protocols.memory.address import check_key
from bifrost.protocols.memory.options import check_name

__all__ = ["Call", "CallKind", "MemoryDevice", "ReadOnlyKey", "find_device", "get_device"]

T = TypeVar("T")
CallKind = Literal["connect", "read", "write"]
_LOG_SIZE = 10_000  # a long demo recording must not grow the log without bound

_registry: dict[str, MemoryDevice] = {}
_registry_lock = threading.Lock()


class ReadOnlyKey(Exception):
    """The device refused a write to one of its read-only keys (the key is the argument)."""

    @property
    def key(self) -> str:
        """The refused key."""
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Call:
    """One request that reached the device, for tests to assert on.

    Attributes
    ----------
    kind
        ``"connect"``, ``"read"`` or ``"write"``.
    at
        ``time.monotonic()`` when it arrived.
    error
        Why it failed (``"ConnectionRefusedError: ..."``), or ``""`` if it was answered.
    """

    kind: CallKind
    at: float
    error: str = ""

    @property
    def ok(self) -> bool:
        """Whether the device answered it."""
        return not self.error


def find_device(name: str) -> MemoryDevice | None:
    """The device named ``name``, if one exists."""
    with _registry_lock:
        return _registry.get(name)


def get_device(name: str) -> MemoryDevice:
    """The device named ``name``, created (empty, online) if there is none."""
    with _registry_lock:
        device = _registry.get(name)
    if device is not None:
        return device
    try:
        return MemoryDevice(name)
    except ConfigurationError:
        # Another thread created it in between: that one is the device.
        existing = find_device(name)
        if existing is None:
            raise
        return existing


class MemoryDevice(MutableMapping[str, Any]):
    """A device whose values live in a dict; the target of ``memory://name``.

    Parameters
    ----------
    name
        The device's name, the host part of its URL (letters, digits, ``_ . -``).
    values
        Initial raw values by key.
    read_only
        Keys that refuse writes (as a PLC refuses writes to its inputs).

    Values are raw, as a PLC holds them: a tag's scale and offset apply on reading. A
    value is read as the type of the tag's address (``mem:key:int16``); one that does
    not fit that type reads with bad quality (``BAD_CONFIG``), as does a key that holds
    no value. Writes through a connection store the value converted to the tag's type.

    Faults apply to requests (reads and writes) in the order they arrive; connecting is
    governed by :meth:`disconnect` and :meth:`reconnect` alone.

    Thread-safe: a test sets values on its own thread while connections read them on
    bifrost's loop thread.
    """

    def __init__(
        self,
        name: str,
        values: Mapping[str, Any] | None = None,
        *,
        read_only: Iterable[str] = (),
    ) -> None:
        check_name(name)
        self.name = name
        self.info: dict[str, Any] = {"vendor": "bifrost", "product": "in-memory device"}
        """Identification returned by ``plc.info()`` (and kept in recordings' metadata)."""
        self.calls: deque[Call] = deque(maxlen=_LOG_SIZE)
        """The latest requests that reached the device, oldest first."""
        self._lock = threading.RLock()
        self._values: dict[str, Any] = {}
        self._quality: dict[str, Quality] = {}
        self._read_only: set[str] = set()
        self._faults: deque[type[BaseException] | BaseException] = deque()
        self._latency = 0.0
        self._online = True
        self._generation = 1
        self._write_hooks: list[Callable[[str, Any], Any]] = []
        # Requests waiting out the latency, woken by disconnect() from any thread.
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        if values:
            self.update(values)
        self.protect(*read_only)
        with _registry_lock:
            if name in _registry:
                raise ConfigurationError(
                    f"a memory device named {name!r} exists already; "
                    f"bifrost.testing.memory_device({name!r}) returns it"
                )
            _registry[name] = self

    # -- the dict of values -----------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        # A key no address could name would be a value no connection can ever read.
        check_key(key)
        with self._lock:
            self._values[key] = value

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._values[key]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._values))

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    @property
    def url(self) -> str:
        """``memory://name``: what :func:`bifrost.connect` takes to talk to this device."""
        return f"memory://{self.name}"

    # -- faults ----------------------------------------------------------------------------
    @property
    def latency(self) -> float:
        """Seconds every request takes to be answered (0 by default).

        A latency of at least the connection's ``timeout`` makes requests time out, as
        they do on a stalled device.
        """
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        value = float(seconds)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"latency must be a finite number of seconds >= 0, got {seconds!r}")
        self._latency = value

    def fail_next(
        self, n: int = 1, exc: type[BaseException] | BaseException = builtins.TimeoutError
    ) -> None:
        """Make the next ``n`` requests fail with ``exc`` (a class or an instance).

        ``TimeoutError`` (the default) fails as a timeout, ``ConnectionError`` (or any
        ``OSError``) as a lost connection; both drop the connection, which reconnects on
        its next request. A :class:`bifrost.ProtocolError` is the device refusing: a read
        gets every tag with ``BAD_PROTOCOL`` quality and the error, a write raises it.
        Any other exception reaches the caller unchanged, to test code that must
        survive a driver's bug. Faults add up with those still pending.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"fail_next needs a count >= 1, got {n!r}")
        if not isinstance(exc, BaseException) and not (
            isinstance(exc, type) and issubclass(exc, BaseException)
        ):
            raise TypeError(f"fail_next needs an exception class or instance, got {exc!r}")
        with self._lock:
            self._faults.extend([exc] * n)

    @property
    def pending_faults(self) -> int:
        """Requests still to fail from :meth:`fail_next`."""
        with self._lock:
            return len(self._faults)

    def clear_faults(self) -> None:
        """Forget the faults :meth:`fail_next` has not used yet."""
        with self._lock:
            self._faults.clear()

    def disconnect(self) -> None:
        """Go away: open connections drop, and connecting fails until :meth:`reconnect`.

        Requests in progress fail at once, as they do when a connection is reset.
        """
        with self._lock:
            self._online = False
            self._generation += 1
            waiting = list(self._waiting)
        for loop, answer in waiting:
            with contextlib.suppress(RuntimeError):  # that loop has closed: nothing waits
                loop.call_soon_threadsafe(_wake, answer)

    def reconnect(self) -> None:
        """Come back: connections reconnect on their next request."""
        with self._lock:
            self._online = True

    @property
    def online(self) -> bool:
        """Whether the device accepts connections (False between disconnect and reconnect)."""
        return self._online

    def set_quality(self, key: str, quality: Quality | int) -> None:
        """Make ``key`` read with ``quality``; ``Quality.GOOD`` restores it.

        Bad codes also put a :class:`bifrost.ProtocolError` on the read, so
        ``plc.read(...)`` raises unless ``errors="quality"``, as a device's per-value
        error status does.
        """
        check_key(key)
        code = Quality(quality)
        with self._lock:
            if code is Quality.GOOD:
                self._quality.pop(key, None)
            else:
                self._quality[key] = code

    def quality(self, key: str) -> Quality:
        """The quality ``key`` reads with."""
        with self._lock:
            return self._quality.get(key, Quality.GOOD)

    def protect(self, *keys: str) -> None:
        """Make ``keys`` refuse writes (:class:`bifrost.WriteNotAllowed`)."""
        for key in keys:
            check_key(key)
        with self._lock:
            self._read_only.update(keys)

    def unprotect(self, *keys: str) -> None:
        """Let ``keys`` accept writes again."""
        with self._lock:
            self._read_only.difference_update(keys)

    @property
    def read_only(self) -> frozenset[str]:
        """The keys that refuse writes."""
        with self._lock:
            return frozenset(self._read_only)

    def on_write(self, callback: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
        """Call ``callback(key, value)`` after each value a connection writes.

        For devices that react: a setpoint written moves a readback. Runs on bifrost's
        loop thread; usable as a decorator.
        """
        self._write_hooks.append(callback)
        return callback

    def count(self, kind: CallKind, *, ok: bool | None = None) -> int:
        """How many requests of ``kind`` are in :attr:`calls`; ``ok`` picks answered or failed."""
        return sum(1 for c in list(self.calls) if c.kind == kind and (ok is None or c.ok is ok))

    # -- lifetime --------------------------------------------------------------------------
    def remove(self) -> None:
        """Disconnect and forget the device; its name may then be used again."""
        self.disconnect()
        with _registry_lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]

    def __enter__(self) -> MemoryDevice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "online" if self._online else "disconnected"
        faults = f", {self.pending_faults} faults pending" if self._faults else ""
        return f"<MemoryDevice {self.name!r} {state}, {len(self)} values{faults}>"

    # -- what a connection calls -----------------------------------------------------------
    def accept(self) -> int:
        """Open a session; raises ``ConnectionRefusedError`` while disconnected."""
        at = time.monotonic()
        with self._lock:
            if not self._online:
                error = builtins.ConnectionRefusedError(
                    f"the memory device {self.name!r} is disconnected"
                )
                self.calls.append(Call("connect", at, _describe(error)))
                raise error
            self.calls.append(Call("connect", at))
            return self._generation

    def alive(self, session: int) -> bool:
        """Whether a session opened by :meth:`accept` still stands."""
        return self._online and session == self._generation

    async def serve(self, session: int, kind: CallKind, work: Callable[[], T]) -> T:
        """Answer one request: wait out the latency, apply the next fault, else ``work()``."""
        at = time.monotonic()
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            latency = self._latency
        try:
            if latency > 0:
                await self._answer_after(latency)
            if not self.alive(session):
                raise builtins.ConnectionResetError(f"the memory device {self.name!r} disconnected")
            if fault is not None:
                raise _instance(fault, self.name)
            result = work()
        except BaseException as exc:  # logged, then raised: the caller translates it
            self.calls.append(Call(kind, at, _describe(exc)))
            raise
        self.calls.append(Call(kind, at))
        return result

    async def _answer_after(self, latency: float) -> None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[None] = loop.create_future()
        entry = (loop, answer)
        timer = loop.call_later(latency, _wake, answer)
        with self._lock:
            self._waiting.add(entry)
        try:
            await answer
        finally:
            timer.cancel()
            with self._lock:
                self._waiting.discard(entry)

    def snapshot(self, keys: Sequence[str]) -> list[tuple[bool, Any, Quality]]:
        """``(present, value, quality)`` of each key, all taken at one moment."""
        with self._lock:
            values, quality = self._values, self._quality
            return [(k in values, values.get(k), quality.get(k, Quality.GOOD)) for k in keys]

    def store(self, items: Sequence[tuple[str, Any]]) -> None:
        """Write all of ``items`` or, if a key is read-only, none (:class:`ReadOnlyKey`)."""
        with self._lock:
            refused = [key for key, _ in items if key in self._read_only]
            if refused:
                raise ReadOnlyKey(refused[0])
            for key, value in items:
                self._values[key] = value
        for key, value in items:
            for hook in list(self._write_hooks):
                hook(key, value)


def _wake(answer: asyncio.Future[None]) -> None:
    if not answer.done():
        answer.set_result(None)


def _instance(fault: type[BaseException] | BaseException, name: str) -> BaseException:
    if isinstance(fault, BaseException):
        # A copy, so that each raise gets its own traceback.
        return copy.copy(fault)
    try:
        return fault(f"injected by fail_next on the memory device {name!r}")
    except TypeError:  # a class that takes no message
        return fault()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
