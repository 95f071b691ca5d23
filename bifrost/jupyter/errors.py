"""bifrost's errors in IPython and Jupyter: a message and a hint instead of a traceback.

:func:`register_error_display` installs one exception handler in the shell (IPython's
``set_custom_exc``), called by ``%load_ext bifrost`` and by ``import bifrost`` inside
IPython. It shows

- a :class:`~bifrost.BifrostError` as its message, a hint naming the call to make next,
  and one line saying how to see more (at most 6 lines; ``%tb`` prints the traceback,
  ``bifrost.debug(True)`` keeps bifrost's own frames in it from then on);
- an interrupted blocking recording (:class:`~bifrost.connection.RecordingInterrupted`)
  as one line, after assigning the partial recording to the variable of the cell's
  statement (``rec = plc.record(...)`` leaves it in ``rec``; a bare call, or a statement
  that is no plain assignment, leaves it in ``_``). The cell still fails, so "Run All"
  stops there.

Everything else, a plain KeyboardInterrupt included, is shown as IPython would. A
handler another package installed keeps handling its own exceptions.

This module imports nothing heavy (no pandas, no widgets): ``import bifrost`` stays quick.
"""

from __future__ import annotations

import ast
import linecache
import sys
import types
from typing import Any

from bifrost._portal import debug
from bifrost.exceptions import BifrostError

__all__ = [
    "compact_error",
    "error_display_registered",
    "register_error_display",
    "unregister_error_display",
]

_RED, _RESET = "\x1b[0;31m", "\x1b[0m"
_DETAILS = "  (%tb shows the traceback; bifrost.debug(True) keeps bifrost's own frames in it)"


class _Installed:
    """What :func:`register_error_display` replaced in one shell, to hand back."""

    def __init__(self, exceptions: tuple[type[BaseException], ...], handler: Any) -> None:
        self.exceptions = exceptions
        self.handler = handler


_INSTALLED: dict[int, _Installed] = {}


def register_error_display(ipython: Any = None) -> bool:
    """Show bifrost's errors briefly in ``ipython`` (default: the running shell, if any).

    Safe to call more than once and outside IPython (then it does nothing and imports
    nothing). Returns whether a shell now shows them.
    """
    if ipython is None:
        if "IPython" not in sys.modules:
            return False
        from IPython import get_ipython

        ipython = get_ipython()
        if ipython is None:
            return False
    if id(ipython) in _INSTALLED:
        return True
    previous = _Installed(tuple(ipython.custom_exceptions), getattr(ipython, "CustomTB", None))
    ours: tuple[type[BaseException], ...] = (BifrostError, KeyboardInterrupt)
    ipython.set_custom_exc(ours + previous.exceptions, _handler)
    _INSTALLED[id(ipython)] = previous
    return True


def error_display_registered(ipython: Any) -> bool:
    """Whether :func:`register_error_display` set ``ipython`` up."""
    return id(ipython) in _INSTALLED


def unregister_error_display(ipython: Any) -> None:
    """Give ``ipython`` back the exception handler it had before."""
    previous = _INSTALLED.pop(id(ipython), None)
    if previous is None:
        return
    if previous.exceptions:
        ipython.custom_exceptions = previous.exceptions
        ipython.CustomTB = previous.handler
    else:
        ipython.set_custom_exc((), None)


def _handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: types.TracebackType | None,
    tb_offset: int | None = None,
) -> list[str] | None:
    previous = _INSTALLED.get(id(shell))
    if (
        previous is not None
        and previous.exceptions
        and isinstance(value, previous.exceptions)
        and not isinstance(value, BifrostError)
        and not _is_interrupted_recording(value)
    ):
        result: list[str] | None = previous.handler(etype, value, tb, tb_offset)
        return result
    # `%tb` and `%debug` look here; IPython sets these only for tracebacks it shows itself.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if _is_interrupted_recording(value):
        stb = [_interrupted(shell, value, tb)]
    elif isinstance(value, BifrostError) and not debug():
        stb = compact_error(value, _namespace(shell))
    else:
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
    shell._showtraceback(etype, value, stb)
    return stb


def compact_error(error: BifrostError, namespace: dict[str, Any] | None = None) -> list[str]:
    """The lines shown for ``error``: message, hint, how to see more.

    Parameters
    ----------
    error
        The error, as raised by a call of the Python API.
    namespace
        The user's variables, to name their connection in the hint (``plc``).
    """
    from bifrost.jupyter.magics.hints import api_hint, protocol_of_url

    method, origin = getattr(error, "_bifrost_call", ("", None))
    protocol = getattr(origin, "protocol", None)
    if protocol is None and isinstance(origin, str):
        protocol = protocol_of_url(origin)
    writable = getattr(origin, "writable", None)
    variable = next(
        (k for k, v in (namespace or {}).items() if v is origin and not k.startswith("_")),
        "plc",
    )
    message = str(error).splitlines() or [""]
    lines = [f"{_RED}{type(error).__name__}{_RESET}: {message[0]}", *message[1:]]
    text = api_hint(
        error, protocol, writable if isinstance(writable, bool) else None, variable, method
    )
    if text:
        lines.append(f"  hint: {text}")
    lines.append(_DETAILS)
    return lines


def _is_interrupted_recording(value: BaseException) -> bool:
    return isinstance(value, KeyboardInterrupt) and hasattr(value, "recording")


def _namespace(shell: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = getattr(shell, "user_ns", {})
    return namespace


def _interrupted(shell: Any, error: Any, tb: types.TracebackType | None) -> str:
    """Leave the partial recording where the user expects it; the line that says so."""
    if error.kept_in == "the exception's .recording":
        target = _assigned_name(shell, tb)
        if target is None:
            # A bare expression's value goes to `_`; so does this one (the displayhook
            # keeps `__` and `___` in order, and leaves a `_` the user assigned alone).
            shell.displayhook.update_user_ns(error.recording)
            found = shell.user_ns.get("_") is error.recording
            error.kept_in = "_" if found else "sys.last_value.recording"
        else:
            shell.user_ns[target] = error.recording
            error.kept_in = target
    return f"{_RED}KeyboardInterrupt{_RESET}: {error}"


def _assigned_name(shell: Any, tb: types.TracebackType | None) -> str | None:
    """``rec`` when the interrupted statement of the cell is ``rec = <...>.record(...)``."""
    frame_line = None
    while tb is not None:
        # The cell's own code runs in the user's namespace at module level.
        if tb.tb_frame.f_globals is shell.user_ns and tb.tb_frame.f_code.co_name == "<module>":
            frame_line = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if frame_line is None:
        return None
    filename, lineno = frame_line
    try:
        tree = ast.parse("".join(linecache.getlines(filename)))
    except SyntaxError:
        return None
    statement = _innermost_statement(tree, lineno)
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target, value = statement.targets[0], statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target, value = statement.target, statement.value
    else:
        return None
    if isinstance(target, ast.Name) and _is_record_call(value):
        return target.id
    return None


def _innermost_statement(tree: ast.AST, lineno: int) -> ast.stmt | None:
    best: ast.stmt | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        inside = node.lineno <= lineno <= (node.end_lineno or node.lineno)
        if inside and (best is None or node.lineno >= best.lineno):
            best = node
    return best


def _is_record_call(node: ast.expr) -> bool:
    """``x.record(...)``, or the magic ``%bifrost record ...`` as IPython rewrites it."""
    if isinstance(node, ast.Await):
        node = node.value
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    if node.func.attr == "record":
        return True
    if node.func.attr == "run_line_magic" and len(node.args) >= 2:
        magic, line = node.args[0], node.args[1]
        return (
            isinstance(magic, ast.Constant)
            and magic.value == "bifrost"
            and isinstance(line, ast.Constant)
            and str(line.value).lstrip().startswith("record")
        )
    return False
