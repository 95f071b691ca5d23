"""Optional parts and libraries: import them lazily and fail with the exact pip command.

bifrost is one import package installed by several distributions: bifrost-core (this
module's), bifrost-iot (the main one), bifrost-opcua, bifrost-analytics, bifrost-cloud
and bifrost-cli. A library or a part of bifrost that is not installed raises
:class:`~bifrost.exceptions.MissingDependency` naming the command that installs it,
with the real distribution name (``bifrost`` on PyPI is an unrelated project).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

from bifrost.exceptions import MissingDependency

__all__ = [
    "EXTRAS",
    "PARTS",
    "install_command",
    "install_missing_part_hook",
    "lazy",
    "missing_part",
    "register_accessor_stubs",
    "require",
]

# Top-level module of a library -> the requirement that brings it.
EXTRAS = {
    "asyncua": "bifrost-opcua",
    "cryptography": "bifrost-opcua",
    "google": "bifrost-cloud",  # protobuf, for Sparkplug B
    "paho": "bifrost-iot",
    "IPython": "bifrost-iot[jupyter]",
    "ipykernel": "bifrost-iot[jupyter]",
    "ipywidgets": "bifrost-iot[jupyter]",
    "matplotlib": "bifrost-iot[jupyter]",
    "tqdm": "bifrost-iot",
    "pyarrow": "bifrost-iot[parquet]",
    "xarray": "bifrost-iot[xarray]",
    "zarr": "bifrost-iot[zarr]",
    "h5netcdf": "bifrost-iot[netcdf]",
    "h5py": "bifrost-iot[netcdf]",
    "dask": "bifrost-analytics[dask]",
    "distributed": "bifrost-analytics[dask]",
    "sklearn": "bifrost-analytics[ml]",
    "typer": "bifrost-cli",
    "rich": "bifrost-cli",
    "textual": "bifrost-cli",
    "textual_plot": "bifrost-cli",
    "keyring": "bifrost-core[keyring]",
    "openpyxl": "bifrost-core[xlsx]",
}

# Parts of the bifrost package -> the distribution that installs them (bifrost-core is
# always there). packages/*/pyproject.toml say which files each one ships; tests/packaging
# checks this table against them.
PARTS = {
    "bifrost.protocols.opcua": "bifrost-opcua",
    "bifrost.analytics": "bifrost-analytics",
    "bifrost.cloud": "bifrost-cloud",
    "bifrost.protocols.mqtt": "bifrost-cloud",
    "bifrost.cli": "bifrost-cli",
    "bifrost.aio": "bifrost-iot",
    "bifrost.connection": "bifrost-iot",
    "bifrost.frames": "bifrost-iot",
    "bifrost.jupyter": "bifrost-iot",
    "bifrost.planning": "bifrost-iot",
    "bifrost.protocols.memory": "bifrost-iot",
    "bifrost.protocols.modbus": "bifrost-iot",
    "bifrost.protocols.s7": "bifrost-iot",
    "bifrost.recording": "bifrost-iot",
    "bifrost.report": "bifrost-iot",
    "bifrost.scaling": "bifrost-iot",
    "bifrost.sim": "bifrost-iot",
    "bifrost.subscriptions": "bifrost-iot",
    "bifrost.testing": "bifrost-iot",
    "bifrost.values": "bifrost-iot",
}

_HINTS = {
    "bifrost-analytics": (
        "; without it, recordings still convert with to_pandas()/to_xarray() and pandas' "
        "own rolling()/resample() work on them. (Where bifrost-analytics has no compiled "
        "wheel, every one of its functions runs on its NumPy twin: "
        "bifrost.analytics.backend() says which.)"
    ),
    "bifrost-cli": " (it brings the `bifrost` command)",
}


def install_command(name: str) -> str:
    """The pip command that installs a library (top-level module) or a part of bifrost.

    >>> install_command("asyncua")
    'pip install bifrost-opcua'
    >>> install_command("pyarrow.parquet")
    'pip install "bifrost-iot[parquet]"'
    """
    requirement = _part(name)
    if requirement is None:
        requirement = EXTRAS.get(name.split(".", 1)[0], "bifrost-all")
    return f'pip install "{requirement}"' if "[" in requirement else f"pip install {requirement}"


def _part(name: str) -> str | None:
    for part, distribution in PARTS.items():
        if name == part or name.startswith(part + "."):
            return distribution
    return None


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the command to install it.

    Parameters
    ----------
    module
        Importable name, e.g. ``"asyncua"``.
    feature
        What the user tried to use, for the message, e.g. ``"OPC UA connections"``.
    """
    try:
        return importlib.import_module(module)
    except MissingDependency:
        raise
    except ImportError as exc:
        library = module.split(".", 1)[0]
        raise MissingDependency(
            f"{feature} need the optional package {library!r}, which is not installed; "
            f"install it with: {install_command(module)}"
        ) from exc


def missing_part(name: str) -> MissingDependency:
    """The error for importing ``name``, a part of bifrost whose distribution is missing."""
    distribution = _part(name) or "bifrost-all"
    return MissingDependency(
        f"{name} is part of the {distribution} distribution, which is not installed; "
        f"install it with: pip install {distribution}{_HINTS.get(distribution, '')}"
    )


class _MissingParts:
    """Last on ``sys.meta_path``: asked only for modules no other finder found.

    A plain class with ``find_spec`` (all a meta path finder needs): importlib.abc costs
    ``import bifrost`` some 30 ms (it imports importlib.resources).
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if _part(fullname) is not None:
            raise missing_part(fullname)


def install_missing_part_hook() -> None:
    """Make ``import bifrost.<part>`` of a missing distribution name the install command."""
    if not any(isinstance(finder, _MissingParts) for finder in sys.meta_path):
        sys.meta_path.append(_MissingParts())


class _LazyModule(ModuleType):
    """A module imported on first attribute access (polars' ``_dependencies`` idea)."""

    def __init__(self, module: str, feature: str) -> None:
        super().__init__(module)
        self._bifrost_feature = feature

    def __getattr__(self, attr: str) -> Any:
        module = require(self.__name__, self._bifrost_feature)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def lazy(module: str, feature: str) -> Any:
    """``module``, imported when first used: ``pa = lazy("pyarrow", "Parquet recordings")``.

    Lets a module use an optional library without importing it (or needing it) at import
    time; a missing library raises :class:`MissingDependency` at its first use.
    """
    loaded = sys.modules.get(module)
    return loaded if loaded is not None else _LazyModule(module, feature)


class _AccessorStub:
    """``.bifrost`` on pandas/xarray objects until bifrost.analytics is imported.

    The first access imports :mod:`bifrost.analytics.accessors`, which registers the real
    accessor in its place, or raises :class:`MissingDependency` naming bifrost-analytics.
    """

    def __get__(self, obj: object, cls: type | None = None) -> Any:
        stubbed = [
            klass for klass in _STUBBED if isinstance(klass.__dict__.get("bifrost"), _AccessorStub)
        ]
        for klass in stubbed:
            delattr(klass, "bifrost")
        try:
            accessors = importlib.import_module("bifrost.analytics.accessors")
        except ImportError as exc:
            for klass in stubbed:
                klass.bifrost = self  # type: ignore[attr-defined]
            raise missing_part("bifrost.analytics") from exc
        if any("bifrost" not in klass.__dict__ for klass in stubbed):
            # It was imported while the stubs were in place, so it registered nothing.
            importlib.reload(accessors)
        owner: Any = obj if obj is not None else cls
        return owner.bifrost


_STUBBED: list[type] = []


def register_accessor_stubs() -> None:
    """Give objects of the already imported pandas (and xarray) a lazy ``.bifrost``.

    Called when bifrost first loads a part that makes DataFrames, so that
    ``rec.to_pandas().bifrost.rolling_mean(20)`` works without importing
    bifrost.analytics (or its xarray) beforehand.
    """
    if "bifrost.analytics.accessors" in sys.modules:
        return
    classes: list[type] = []
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        classes += [pandas.Series, pandas.DataFrame]
    xarray = sys.modules.get("xarray")
    if xarray is not None:
        classes += [xarray.DataArray, xarray.Dataset]
    for klass in classes:
        if "bifrost" not in klass.__dict__:
            klass.bifrost = _AccessorStub()  # type: ignore[attr-defined]
            _STUBBED.append(klass)
