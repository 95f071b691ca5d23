"""The ``%bifrost`` magics: ``%load_ext bifrost`` registers them with the shell.

- :mod:`~bifrost.jupyter.magics.registry`: how a command is declared (its arguments
  next to its handler, its docstring as description), and the help and errors made
  from the declarations;
- :mod:`~bifrost.jupyter.magics.commands`: :class:`BifrostMagics`, whose methods are
  the commands;
- :mod:`~bifrost.jupyter.magics.hints`: the one-line errors and their hints, with
  addresses in the syntax of the connection's protocol.
"""

from __future__ import annotations

from typing import Any

from bifrost.jupyter import register_ipython_hooks
from bifrost.jupyter.completion import unregister_completions
from bifrost.jupyter.errors import error_display_registered, unregister_error_display
from bifrost.jupyter.magics.commands import COMMANDS, BifrostMagics, apply_nest_asyncio
from bifrost.jupyter.magics.hints import BifrostMagicError

__all__ = [
    "COMMANDS",
    "BifrostMagicError",
    "BifrostMagics",
    "apply_nest_asyncio",
    "load",
    "unload",
]

# Keyed by shell so that `%reload_ext bifrost` finds the instance that owns the open
# connections instead of registering a second one.
_INSTANCES: dict[int, BifrostMagics] = {}


def load(ipython: Any) -> BifrostMagics:
    """Register the magics with ``ipython`` (once per shell) and make them configurable."""
    existing = _INSTANCES.get(id(ipython))
    if existing is not None:
        return existing
    magics = BifrostMagics(shell=ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
    _INSTANCES[id(ipython)] = magics
    # What `import bifrost` did not set up already, unload hands back.
    magics.registered_hooks = not error_display_registered(ipython)
    register_ipython_hooks(ipython)
    return magics


def unload(ipython: Any) -> None:
    """Close everything the magics opened and remove them from ``ipython``."""
    magics = _INSTANCES.pop(id(ipython), None)
    if magics is None:
        return
    magics.close()
    if magics.registered_hooks:
        unregister_error_display(ipython)
        unregister_completions(ipython)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    ipython.magics_manager.magics["line"].pop("bifrost", None)
    ipython.magics_manager.magics["cell"].pop("bifrost", None)
