"""bifrost: industrial protocols as easy to use from a notebook as a web API.

>>> import bifrost as bf
>>> plc = bf.connect("modbus://127.0.0.1:5020", unit=1)        # doctest: +SKIP
>>> plc.read(["hr:0:float32", "hr:2:int16"])                    # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

# Registers the `.bifrost` accessor on pandas and xarray objects (cheap: no SciPy/dask).
import bifrost.analytics.accessors  # noqa: F401
from bifrost.connection import Connection, connect
from bifrost.exceptions import (
    AddressError,
    BifrostError,
    ConfigurationError,
    ConnectionError,
    MissingDependency,
    ProtocolError,
    TagNotFound,
    TimeoutError,
    ValueOutOfRange,
    WriteNotAllowed,
)
from bifrost.model import ByteOrder, DataPoint, DataType, Quality, Tag
from bifrost.recording import Recording, RecordingStats, open_recording
from bifrost.secrets import Secret, secret
from bifrost.tags import TagTable

if TYPE_CHECKING:
    from bifrost import aio, analytics, sim

try:
    __version__ = version("bifrost")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AddressError",
    "BifrostError",
    "ByteOrder",
    "ConfigurationError",
    "Connection",
    "ConnectionError",
    "DataPoint",
    "DataType",
    "MissingDependency",
    "ProtocolError",
    "Quality",
    "Recording",
    "RecordingStats",
    "Secret",
    "Tag",
    "TagNotFound",
    "TagTable",
    "TimeoutError",
    "ValueOutOfRange",
    "WriteNotAllowed",
    "__version__",
    "aio",
    "analytics",
    "connect",
    "load_ipython_extension",
    "open_recording",
    "secret",
    "sim",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    # Submodules load on first use so `import bifrost` stays fast. Spelled out, not
    # imported by a computed name, so that import-linter sees these imports.
    if name == "aio":
        # Not `from bifrost import aio`: that asks this hook again, endlessly.
        import bifrost.aio

        return bifrost.aio
    if name == "analytics":
        import bifrost.analytics

        return bifrost.analytics
    if name == "sim":
        import bifrost.sim

        return bifrost.sim
    raise AttributeError(f"module 'bifrost' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bifrost``: register the ``%bifrost`` magics (see :mod:`bifrost.jupyter`)."""
    from bifrost import jupyter

    jupyter.load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext bifrost``: stop live trends, close what the magics opened."""
    from bifrost import jupyter

    jupyter.unload_ipython_extension(ipython)
