"""bifrost: industrial protocols as easy to use from a notebook as a web API.

>>> import bifrost as bf
>>> plc = bf.connect("modbus://127.0.0.1:5020", unit=1)        # doctest: +SKIP
>>> plc.read(["hr:0:float32", "hr:2:int16"])                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bifrost import _extras
from bifrost.exceptions import (
    AddressError,
    ArgumentTypeError,
    BifrostError,
    BifrostWarning,
    ConfigurationError,
    ConnectionError,
    MissingDependency,
    PrecisionWarning,
    ProtocolError,
    TagFileWarning,
    TagNotFound,
    TimeoutError,
    ValueOutOfRange,
    WriteNotAllowed,
)
from bifrost.model import ByteOrder, DataPoint, DataType, Quality, Tag
from bifrost.secrets import Secret, secret
from bifrost.tags import TagTable

if TYPE_CHECKING:
    from bifrost import aio, analytics, cloud, sim
    from bifrost._portal import debug
    from bifrost.connection import Connection, RecordingInterrupted, connect
    from bifrost.recording import Recording, RecordingStats, open_recording

    __version__: str

# `import bifrost` loads bifrost-core's pure-Python modules only: no NumPy, pandas,
# xarray or pyarrow. Connections, recordings and the submodules below live in other
# distributions and load on first use (module __getattr__); a missing one raises
# MissingDependency naming its pip command, and so does `import bifrost.<part>`.
_extras.install_missing_part_hook()
_extras.register_accessor_stubs()


def _register_ipython_hooks() -> None:
    # In IPython or a notebook: short errors, tag completion, quiet driver logs. Only
    # when IPython is already loaded, and not at all with bifrost-core alone (no jupyter).
    import sys

    if "IPython" not in sys.modules:
        return
    try:
        from bifrost import jupyter
    except ImportError:
        return
    jupyter.register_ipython_hooks()


_register_ipython_hooks()

__all__ = [
    "AddressError",
    "ArgumentTypeError",
    "BifrostError",
    "BifrostWarning",
    "ByteOrder",
    "ConfigurationError",
    "Connection",
    "ConnectionError",
    "DataPoint",
    "DataType",
    "MissingDependency",
    "PrecisionWarning",
    "ProtocolError",
    "Quality",
    "Recording",
    "RecordingInterrupted",
    "RecordingStats",
    "Secret",
    "Tag",
    "TagFileWarning",
    "TagNotFound",
    "TagTable",
    "TimeoutError",
    "ValueOutOfRange",
    "WriteNotAllowed",
    "__version__",
    "aio",
    "analytics",
    "cloud",
    "connect",
    "debug",
    "load_ipython_extension",
    "open_recording",
    "secret",
    "sim",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    # Spelled out, not imported by a computed name, so that import-linter sees these
    # imports; `import bifrost.aio`, not `from bifrost import aio`, which would ask this
    # hook again, endlessly.
    value: Any
    if name == "__version__":
        value = _version()
    elif name == "analytics":
        import bifrost.analytics

        value = bifrost.analytics
    elif name == "cloud":
        import bifrost.cloud

        value = bifrost.cloud
    elif name == "aio":
        import bifrost.aio

        value = bifrost.aio
    elif name == "sim":
        import bifrost.sim

        value = bifrost.sim
    elif name == "debug":
        import bifrost._portal

        value = bifrost._portal.debug
    elif name in ("Connection", "RecordingInterrupted", "connect"):
        import bifrost.connection

        value = getattr(bifrost.connection, name)
    elif name in ("Recording", "RecordingStats", "open_recording"):
        import bifrost.recording

        value = getattr(bifrost.recording, name)
    else:
        raise AttributeError(f"module 'bifrost' has no attribute {name!r}")
    # These parts made pandas importable: give its objects the lazy `.bifrost` accessor.
    _extras.register_accessor_stubs()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _version() -> str:
    # importlib.metadata costs tens of milliseconds to import: only when asked. Every
    # distribution has the same version (docs/versioning.md).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bifrost-core")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bifrost``: register the ``%bifrost`` magics (see :mod:`bifrost.jupyter`)."""
    from bifrost import jupyter

    jupyter.load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext bifrost``: stop live trends, close what the magics opened."""
    from bifrost import jupyter

    jupyter.unload_ipython_extension(ipython)
