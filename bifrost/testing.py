"""Test your own code against a PLC that lives in memory: ``memory://`` and pytest fixtures.

A :class:`MemoryDevice` is a dict of raw values with a real device's faults on demand;
``bifrost.connect("memory://name")`` talks to the device of that name like to any PLC
(reads, writes, recordings, subscriptions), in microseconds and with no server::

    import bifrost as bf
    from bifrost.testing import memory_device

    device = memory_device("line1", {"tank.level": 2.5})
    with bf.connect(device.url) as plc:
        plc.read("mem:tank.level")              # 2.5, quality good
        device["tank.level"] = 3.0              # the process moves
        device.latency = 0.05                   # every request takes 50 ms
        device.fail_next(2, TimeoutError)       # the next two requests time out
        device.fail_next(exc=bf.ProtocolError("refused", code=2))  # the device says no
        device.set_quality("tank.level", bf.Quality.UNCERTAIN)
        device.disconnect()                     # connections drop, connecting fails...
        device.reconnect()                      # ...until it is back

Addresses are ``mem:<key>[:<type>]`` (``mem:tank.level``, ``mem:pump.running:bool``,
``mem:batch.name:string[16]``; the type defaults to float64), see
:mod:`bifrost.protocols.memory.address`.

The pytest fixtures load with one line in a ``conftest.py`` (or a test module)::

    pytest_plugins = ["bifrost.testing"]

    def test_my_alarm_fires(memory_device, memory_plc):
        memory_device["tank.level"] = 9.5
        assert my_alarm(memory_plc)

``memory_device`` is a fresh device per test, removed afterwards; ``memory_plc`` is a
writable :class:`bifrost.Connection` to it with the small tag table of
:func:`memory_tags`, the device holding :data:`MEMORY_VALUES`. They are not registered
as a plugin for every pytest run in the environment on purpose: that would import
bifrost (NumPy, pandas) into unrelated projects' test sessions.

PYTEST_DONT_REWRITE: the fixtures assert nothing, and a test module may import this
module before its ``pytest_plugins`` line loads it (pytest would warn it came too late).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from bifrost.connection import Connection, connect
from bifrost.model import Tag
from bifrost.protocols.memory.device import Call, MemoryDevice, ReadOnlyKey, find_device
from bifrost.tags import TagTable

__all__ = [
    "MEMORY_VALUES",
    "Call",
    "MemoryDevice",
    "ReadOnlyKey",
    "memory_device",
    "memory_tags",
]

MEMORY_VALUES: Mapping[str, Any] = {
    "tank.level": 2.5,
    "tank.temperature": 21.5,
    "pump.running": False,
    "batch.count": 0,
    "line.flow": 125,
    "batch.name": "A-001",
}
"""The raw values the ``memory_plc`` fixture's device starts with, by key."""

_counter = itertools.count(1)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def memory_tags() -> TagTable:
    """The tag table of the ``memory_plc`` fixture: one tag per key of MEMORY_VALUES.

    ``line.flow`` is scaled (raw 125 reads 12.5 l/s); ``tank.temperature`` and
    ``line.flow`` are read-only in the table, the others writable.
    """
    return TagTable(
        [
            Tag("tank.level", "mem:tank.level:float64", unit="m", writable=True),
            Tag("tank.temperature", "mem:tank.temperature:float32", unit="degC"),
            Tag("pump.running", "mem:pump.running:bool", writable=True),
            Tag("batch.count", "mem:batch.count:int32", writable=True),
            Tag("line.flow", "mem:line.flow:uint16", unit="l/s", scale=0.1),
            Tag("batch.name", "mem:batch.name:string[16]", writable=True),
        ]
    )


def memory_device(
    name: str | None = None,
    values: Mapping[str, Any] | None = None,
    *,
    read_only: Iterable[str] = (),
) -> MemoryDevice:
    """The device behind ``memory://name``: the existing one, or a new empty one.

    Parameters
    ----------
    name
        The device's name; None makes a new device with a name no other has.
    values
        Raw values to set (on top of those the device holds).
    read_only
        Keys to make refuse writes.

    Use it as a context manager to remove the device when done:
    ``with memory_device() as device: ...``.
    """
    if name is None:
        device = MemoryDevice(_fresh_name("device"))
    else:
        existing = find_device(name)
        device = existing if existing is not None else MemoryDevice(name)
    if values:
        device.update(values)
    device.protect(*read_only)
    return device


def _fresh_name(stem: str) -> str:
    stem = _UNSAFE.sub("-", stem).strip("-")[:48] or "device"
    while True:
        name = f"{stem}-{next(_counter)}"
        if find_device(name) is None:
            return name


def _memory_plc(device: MemoryDevice) -> Connection:
    device.update(MEMORY_VALUES)
    return connect(device.url, tags=memory_tags(), writable=True, timeout=1.0)


# The fixtures need pytest; the device store does not (a notebook demo has no pytest).
try:
    import pytest
except ImportError:  # pragma: no cover - exercised only without pytest installed
    _HAVE_PYTEST = False
else:
    _HAVE_PYTEST = True

if TYPE_CHECKING or _HAVE_PYTEST:
    __all__ += ["memory_device_fixture", "memory_plc"]

    # Named apart from memory_device(), the function, which the fixture would shadow.
    @pytest.fixture(name="memory_device")
    def memory_device_fixture(request: pytest.FixtureRequest) -> Iterator[MemoryDevice]:
        """A fresh, empty, online device for one test (named after it), removed after."""
        with MemoryDevice(_fresh_name(request.node.name)) as device:
            yield device

    @pytest.fixture
    def memory_plc(memory_device: MemoryDevice) -> Iterator[Connection]:
        """A writable connection to the test's ``memory_device``, with :func:`memory_tags`.

        The device holds :data:`MEMORY_VALUES`; the connection's timeout is 1 s.
        """
        with _memory_plc(memory_device) as plc:
            yield plc
