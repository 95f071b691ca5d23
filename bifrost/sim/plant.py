"""The simulated plant: process model, clock, server thread and lifecycle."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from bifrost._extras import require
from bifrost.exceptions import ConfigurationError
from bifrost.sim import tagmap
from bifrost.sim.process import AuxChannels, ProcessConfig, ProcessModel
from bifrost.tags import TagTable

if TYPE_CHECKING:
    from bifrost.connection import Connection

__all__ = ["Plant"]

_log = logging.getLogger("bifrost.sim")

_START_TIMEOUT = 10.0  # s to start a server or the thread
_STOP_TIMEOUT = 2.0  # s for close() to stop the servers and the thread
_MAX_BATCH = 200  # steps advanced at once before the loop serves requests again
_MAX_LAG = 5.0  # s of backlog caught up after a stall; beyond that, time is skipped


class _Binding(Protocol):
    """What a protocol server offers the plant (see ``modbus_server.ModbusBinding``)."""

    url: str

    def publish(self, snapshot: Mapping[str, Any], aux: npt.NDArray[np.uint16]) -> None: ...

    def collect_writes(self) -> dict[str, Any]: ...

    async def start(self, host: str, port: int) -> int: ...

    async def stop(self) -> None: ...


def _make_binding(
    protocol: str,
    tags: TagTable,
    lock: threading.RLock,
    aux: int,
    options: Mapping[str, Any] | None = None,
) -> _Binding:
    if protocol == "modbus":
        from bifrost.protocols.modbus.server import ModbusBinding

        return ModbusBinding(tags, lock, aux=aux, **(options or {}))
    if protocol == "s7":
        from bifrost.protocols.s7.server import S7Binding

        return S7Binding(tags, lock, aux=aux)
    if protocol == "opcua":
        # The server is in bifrost-opcua, with asyncua: without either, the error names
        # `pip install bifrost-opcua` (a missing bifrost-opcua: bifrost._extras' hook).
        require("asyncua", "The simulated plant's OPC UA server")
        from bifrost.protocols.opcua.server import OpcUaBinding

        return OpcUaBinding(tags, lock, **(options or {}))
    raise ConfigurationError(
        f"the simulated plant does not serve {protocol!r}; available: {', '.join(tagmap.PROTOCOLS)}"
    )


class Plant:
    """A simulated plant (tank, reactor, pump, packaging line) served on loopback.

    Parameters
    ----------
    seed
        Seed of the process noise and the line's state machine. Two plants with the same
        seed, stepped the same number of times with the same writes, have identical
        snapshots.
    dt
        Simulation step in seconds.
    realtime
        True: a background thread advances the model on the monotonic clock, catching up
        in whole steps. False: time stands still until :meth:`step` is called (tests).
    aux
        Number of auxiliary benchmark registers (Modbus holding registers from 1000 on).
    config
        Parameters of the process models.

    Examples
    --------
    >>> with Plant(seed=1, realtime=False) as plant:
    ...     plant.step(100)
    ...     round(plant.time, 6), plant.snapshot()["line.recipe"]
    (1.0, 'PART-4711')
    """

    def __init__(
        self,
        seed: int = 0,
        dt: float = 0.01,
        realtime: bool = True,
        *,
        aux: int = tagmap.DEFAULT_AUX,
        config: ProcessConfig | None = None,
    ) -> None:
        max_aux = 65536 - tagmap.MODBUS_AUX_START
        if isinstance(aux, bool) or not isinstance(aux, int) or not 0 <= aux <= max_aux:
            raise ConfigurationError(f"aux must be an integer 0-{max_aux}, got {aux!r}")
        self._model = ProcessModel(seed=seed, dt=dt, config=config)
        self.seed = seed
        self.dt = self._model.dt
        self.realtime = bool(realtime)
        self.aux = aux
        self._lock = threading.RLock()
        self._bindings: dict[str, _Binding] = {}
        self._urls: dict[str, str] = {}
        self._tables: dict[str, TagTable] = {}
        self._options: dict[str, dict[str, Any]] = {}  # per-protocol binding options
        self._aux_channels = AuxChannels(aux, self.dt)
        self._aux_values = self._aux_channels.at(0)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._closed = False
        if self.realtime:
            self._start_thread()

    # -- state ----------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time in seconds since the plant was created."""
        with self._lock:
            return self._model.time

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        with self._lock:
            return self._model.steps

    @property
    def vibration_rate(self) -> float:
        """Sampling rate of ``pump.vibration`` in Hz (its samples per step over ``dt``)."""
        return self._model.config.vibration_samples / self.dt

    @property
    def urls(self) -> dict[str, str]:
        """URL of every protocol being served, e.g. ``{"modbus": "modbus://127.0.0.1:5020"}``."""
        return dict(self._urls)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def snapshot(self) -> dict[str, Any]:
        """Every tag's current value by name, taken between two steps.

        Includes ``pump.vibration`` (a float64 array of the latest step's samples, served
        by OPC UA only); the auxiliary channels are in :meth:`aux_values`.
        """
        with self._lock:
            return self._model.snapshot()

    def aux_values(self) -> npt.NDArray[np.uint16]:
        """The auxiliary benchmark channels as served now (a copy)."""
        with self._lock:
            return self._aux_values.copy()

    def step(self, n: int = 1) -> None:
        """Advance a ``realtime=False`` plant by ``n`` steps.

        Client writes received since the last step are applied first; the servers show
        the new state when this returns.
        """
        if self.realtime:
            raise ConfigurationError("step() is for Plant(realtime=False); this plant runs itself")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigurationError(f"step count must be an integer >= 0, got {n!r}")
        self._advance(n)

    def _advance(self, n: int) -> None:
        with self._lock:
            for binding in self._bindings.values():
                for name, value in binding.collect_writes().items():
                    self._model.set_input(name, value)
            self._model.step(n)
            self._publish()

    def _publish(self) -> None:
        # Called with the lock held: one snapshot, every server gets the same one.
        if not self._bindings:
            return
        self._aux_values = self._aux_channels.at(self._model.steps)
        snapshot = self._model.snapshot()
        for binding in self._bindings.values():
            binding.publish(snapshot, self._aux_values)

    # -- tags -----------------------------------------------------------------------------
    def tags(self, protocol: str = "modbus") -> TagTable:
        """The plant's tag table for ``protocol`` (same names for every protocol)."""
        if protocol not in self._tables:
            self._tables[protocol] = tagmap.tag_table(protocol)
        return self._tables[protocol]

    def aux_tags(self, n: int, dtype: str = "uint16") -> TagTable:
        """``n`` Modbus tags ``aux.0000``... on the auxiliary registers (hr 1000 on)."""
        return tagmap.aux_tags(n, dtype, aux=self.aux)

    # -- serving --------------------------------------------------------------------------
    def serve(
        self,
        *,
        host: str = "127.0.0.1",
        opcua_security: bool | int = False,  # int: so that serve(**ports) type-checks
        opcua_aux: int = 0,
        **ports: int,
    ) -> dict[str, str]:
        """Start protocol servers, e.g. ``serve(modbus=0)`` (0 picks a free port).

        Without arguments every available protocol is served on a free port. Each
        protocol can be served once.

        ``opcua_security=True`` makes the OPC UA server offer only Basic256Sha256 (Sign and
        SignAndEncrypt) with a user name and password; certificates are generated into a
        temporary directory and described by :attr:`opcua_security`. ``opcua_aux=n`` adds
        ``n`` auxiliary variables ``Plant/Aux/aux.0000``... updated at 10 Hz (benchmarks).

        Returns
        -------
        dict
            The URL of every protocol served so far, e.g.
            ``{"modbus": "modbus://127.0.0.1:50712"}``.

        Raises
        ------
        ConfigurationError
            For an unknown protocol, a bad port, a protocol already served, a port that
            cannot be bound, or a closed plant.
        """
        if not ports:
            ports = {p: 0 for p in tagmap.PROTOCOLS if p not in self._urls}
        if "opcua" in ports:
            self._options["opcua"] = {
                "security": bool(opcua_security),
                "aux": opcua_aux,
                "dt": self.dt,
            }
        return self._serve(host, ports)

    def modbus_device(
        self,
        *,
        holes: Mapping[str, Sequence[tuple[int, int]]] | None = None,
        max_batch: int | None = None,
    ) -> None:
        """Make the Modbus server, once served, play a smaller device (for ``plc.scan()``).

        ``holes={"hr": [(first, last), ...]}`` (inclusive; ``hr``/``ir``) are refused
        with exception 2; reads of more than ``max_batch`` registers with exception 3.
        """
        if "modbus" in self._urls:
            raise ConfigurationError("modbus_device() must come before serving Modbus")
        self._options["modbus"] = {"holes": holes, "max_batch": max_batch}

    def _serve(self, host: str, ports: Mapping[str, int]) -> dict[str, str]:
        if self._closed:
            raise ConfigurationError("this simulated plant is closed")
        for protocol, port in ports.items():
            if protocol in self._urls:
                raise ConfigurationError(f"{protocol} is already served at {self._urls[protocol]}")
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ConfigurationError(f"{protocol}: port must be 0-65535, got {port!r}")
            tagmap.tag_table(protocol)  # unknown protocol: fail before starting anything
        loop = self._start_thread()
        for protocol, port in ports.items():
            binding = self._binding(protocol)
            with self._lock:  # from now on every step is published to it
                self._aux_values = self._aux_channels.at(self._model.steps)
                binding.publish(self.snapshot(), self._aux_values)
                self._bindings[protocol] = binding
            future = asyncio.run_coroutine_threadsafe(binding.start(host, port), loop)
            try:
                future.result(timeout=_START_TIMEOUT)
            except BaseException as exc:
                future.cancel()
                with self._lock:
                    del self._bindings[protocol]
                if isinstance(exc, concurrent.futures.TimeoutError):
                    raise ConfigurationError(f"{protocol}: the server did not start") from None
                raise
            self._urls[protocol] = binding.url
            _log.info("simulated plant serves %s at %s", protocol, binding.url)
        return self.urls

    def _binding(self, protocol: str) -> _Binding:
        """The server of ``protocol`` for this plant (a replay serves its recording)."""
        return _make_binding(
            protocol, self.tags(protocol), self._lock, self.aux, self._options.get(protocol)
        )

    def connect(self, protocol: str = "modbus", **kwargs: Any) -> Connection:
        """Connect to the plant with ``protocol``'s tag table attached.

        Serves the protocol on a free port first if it is not served yet. Keyword
        arguments go to :func:`bifrost.connect`.
        """
        from bifrost.connection import connect

        if protocol not in self._urls:
            self._serve("127.0.0.1", {protocol: 0})
        if protocol == "opcua":
            # Tutorials stay short: the plant's own endpoint is trusted explicitly here.
            security = self.opcua_security
            defaults = {"security": "None"} if security is None else security.client_options()
            kwargs = {**defaults, **kwargs}
        return connect(self._urls[protocol], tags=self.tags(protocol), **kwargs)

    @property
    def opcua_security(self) -> Any:
        """The secured OPC UA endpoint's certificates and credentials, or None.

        A :class:`bifrost.protocols.opcua.server.SecuritySetup`; its ``client_options()`` are
        keyword arguments for :func:`bifrost.connect`.
        """
        binding = self._bindings.get("opcua")
        return getattr(binding, "security", None)

    def run(
        self,
        seconds: float | None = None,
        *,
        ready: Callable[[dict[str, str]], None] | None = None,
        host: str = "127.0.0.1",
        **ports: int,
    ) -> None:
        """Serve and block until ``seconds`` have passed or Ctrl-C; then close (``bifrost sim``).

        Parameters
        ----------
        seconds
            How long to run; None runs until interrupted.
        ready
            Called with the URLs once the servers listen (e.g. to print them).
        host, ports
            As for :meth:`serve`; protocols already served are kept.
        """
        if not self.realtime:
            raise ConfigurationError("run() needs Plant(realtime=True); time would stand still")
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigurationError(f"seconds must be >= 0 or None, got {seconds!r}")
        try:
            if ports or not self._urls:
                self.serve(host=host, **ports)
            if ready is not None:
                ready(self.urls)
            deadline = None if seconds is None else time.monotonic() + seconds
            thread = self._thread
            while thread is not None and thread.is_alive():
                left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
                if left <= 0:
                    break
                time.sleep(left)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    # -- thread and lifecycle -------------------------------------------------------------
    def _start_thread(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(started,), name="bifrost-sim", daemon=True
        )
        self._thread.start()
        if not started.wait(_START_TIMEOUT) or self._loop is None:
            raise ConfigurationError("the simulated plant's thread did not start")
        return self._loop

    def _thread_main(self, started: threading.Event) -> None:
        asyncio.run(self._main(started))

    async def _main(self, started: threading.Event) -> None:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        started.set()
        ticker = asyncio.create_task(self._tick()) if self.realtime else None
        try:
            await self._stop.wait()
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            for binding in list(self._bindings.values()):
                try:
                    await binding.stop()
                except Exception:  # a server that fails to stop must not block the others
                    _log.exception("stopping a simulated server failed")

    async def _tick(self) -> None:
        """Advance the model on the monotonic clock: whole steps, no drift."""
        dt = self.dt
        origin = time.monotonic()
        done = 0
        while True:
            due = math.floor((time.monotonic() - origin) / dt)
            behind = due - done
            if behind * dt > _MAX_LAG:  # e.g. the machine slept: skip, don't race
                skipped = behind - round(_MAX_LAG / dt)
                origin += skipped * dt
                due -= skipped
                behind -= skipped
            if behind > 0:
                n = min(behind, _MAX_BATCH)
                try:
                    self._advance(n)
                except Exception:
                    _log.exception("the simulated plant failed to step; it stops")
                    raise
                done += n
                if n < behind:
                    await asyncio.sleep(0)
                    continue
            wake = origin + (done + 1) * dt
            await asyncio.sleep(max(0.0, wake - time.monotonic()))

    def close(self) -> None:
        """Stop the servers and the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended in between
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                _log.warning("the simulated plant's thread did not stop within %s s", _STOP_TIMEOUT)
        for binding in self._bindings.values():
            cleanup = getattr(binding, "cleanup", None)
            if cleanup is not None:  # e.g. the OPC UA server's generated certificates
                cleanup()
        self._bindings.clear()
        self._urls.clear()

    def __enter__(self) -> Plant:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "realtime" if self.realtime else "stepped"
        state = "closed" if self._closed else ", ".join(self._urls.values()) or "not served"
        return f"<Plant seed={self.seed} dt={self.dt} {mode} t={self.time:.2f}s {state}>"
