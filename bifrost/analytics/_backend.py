"""Choice of the kernel implementation: the compiled ``bifrost._core`` or NumPy.

The compiled module is used unless the environment variable ``BIFROST_NO_RUST`` is set to
``1`` (or ``true``/``yes``/``on``) when this module is first imported, or the module
cannot be imported (not built, or built for another Python).

Both are returned as :class:`~bifrost.analytics._kernels.Kernels`, the interface read
off the stub of ``bifrost._core`` that mypy checks the NumPy twins against.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bifrost.analytics._kernels import Kernels

__all__ = ["backend", "kernels"]

_DISABLING_VALUES = frozenset({"1", "true", "yes", "on"})


def _load_compiled() -> Kernels | None:
    """Import ``bifrost._core`` unless disabled; None if disabled or not importable."""
    if os.environ.get("BIFROST_NO_RUST", "").strip().lower() in _DISABLING_VALUES:
        return None
    try:
        # By name: import-linter cannot find compiled modules and would take a static
        # import for one of the root package. mypy sees a plain module here; the stub it
        # stands for is checked against Kernels in _kernels.pyi.
        return importlib.import_module("bifrost._core")
    except ImportError:
        return None


_compiled: Kernels | None = _load_compiled()


def backend() -> Literal["rust", "numpy"]:
    """Name the implementation that the analytics functions use.

    Returns
    -------
    {"rust", "numpy"}
        ``"rust"`` when the compiled module ``bifrost._core`` is in use, ``"numpy"`` when
        the NumPy twins are (module missing, or ``BIFROST_NO_RUST=1``).
    """
    return "rust" if _compiled is not None else "numpy"


def kernels() -> Kernels:
    """Return the kernels in use: ``bifrost._core`` or the NumPy twins.

    Returns
    -------
    Kernels
        A module providing every kernel of ``bifrost._core``.
    """
    if _compiled is not None:
        return _compiled
    # Imported on first use: with the compiled module in use, `import bifrost` does not
    # pay for compiling and loading the twins.
    from bifrost.analytics import _numpy

    return _numpy
