"""bifrost in Jupyter: the ``%bifrost`` magics and the widgets.

>>> %load_ext bifrost                                   # doctest: +SKIP
>>> %bifrost sim start                                   # doctest: +SKIP
>>> %bifrost connect plc sim                             # doctest: +SKIP
>>> from bifrost.jupyter import TagBrowser               # doctest: +SKIP
>>> TagBrowser(plc)                                      # doctest: +SKIP

The widgets load ipywidgets and matplotlib on first use, so ``%load_ext bifrost`` stays
quick and the magics work in a plain IPython terminal too. The rich HTML of connections,
tag tables and recordings is not here but in :mod:`bifrost._html`, called by the objects'
own ``_repr_html_``: so they render without ``%load_ext``, and no lower layer has to
import this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bifrost.jupyter.widgets import DecodeProbe, LiveTrend, RecorderPanel, TagBrowser

__all__ = [
    "DecodeProbe",
    "LiveTrend",
    "RecorderPanel",
    "TagBrowser",
    "load_ipython_extension",
    "register_ipython_hooks",
    "unload_ipython_extension",
]

_WIDGETS = {"DecodeProbe", "LiveTrend", "RecorderPanel", "TagBrowser"}


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        return getattr(importlib.import_module("bifrost.jupyter.widgets"), name)
    raise AttributeError(f"module 'bifrost.jupyter' has no attribute {name!r}")


def register_ipython_hooks(ipython: Any = None) -> bool:
    """In IPython or Jupyter: short errors, tab completion, quiet driver logs.

    - a :class:`~bifrost.BifrostError` shows as its message and a hint (no traceback),
      and an interrupted ``plc.record(...)`` leaves its partial recording in the cell's
      variable (:mod:`bifrost.jupyter.errors`);
    - tab completes tag names in ``plc.read(["...`` and ``plc.tags["...``
      (:mod:`bifrost.jupyter.completion`);
    - driver libraries log only warnings and worse (:mod:`bifrost.jupyter.logs`).

    ``import bifrost`` calls it inside IPython, ``%load_ext bifrost`` too (with the magics).
    ``ipython`` defaults to the running shell; outside IPython this does nothing (and
    imports nothing). Returns whether a shell was set up.
    """
    from bifrost.jupyter.errors import register_error_display

    if not register_error_display(ipython):
        return False
    from bifrost.jupyter.completion import register_completions
    from bifrost.jupyter.logs import quiet_driver_logs

    if ipython is None:
        from IPython import get_ipython

        ipython = get_ipython()
    register_completions(ipython)
    quiet_driver_logs()
    return True


def load_ipython_extension(ipython: Any) -> None:
    """Register :class:`~bifrost.jupyter.magics.BifrostMagics` with ``ipython``."""
    from bifrost.jupyter.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop live trends and recordings' displays, close what the magics opened."""
    from bifrost.jupyter.magics import unload

    unload(ipython)
