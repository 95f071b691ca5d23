"""Optional dependencies: import them lazily and fail with the exact pip command."""

from __future__ import annotations

import importlib
from types import ModuleType

from bifrost.exceptions import MissingDependency

__all__ = ["EXTRAS", "require"]

EXTRAS = {
    "asyncua": "opcua",
    "paho": "cloud",
    "IPython": "jupyter",
    "ipywidgets": "jupyter",
    "matplotlib": "jupyter",
    "scipy": "analytics",
    "dask": "analytics",
    "distributed": "analytics",
    "zarr": "analytics",
    "h5netcdf": "analytics",
    "h5py": "analytics",
    "typer": "cli",
    "rich": "cli",
    "keyring": "opcua",
}


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the extra to install.

    Parameters
    ----------
    module
        Importable name, e.g. ``"asyncua"``.
    feature
        What the user tried to use, for the message, e.g. ``"OPC UA connections"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module.split(".", 1)[0], "all")
        raise MissingDependency(
            f"{feature} need the optional package {module.split('.', 1)[0]!r}, which is not "
            f'installed; install it with: pip install "bifrost[{extra}]"'
        ) from exc
