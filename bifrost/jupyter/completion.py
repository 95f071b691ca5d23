"""Tab completion for bifrost in IPython and Jupyter.

One matcher (IPython's matcher API v2, appended to ``Completer.custom_matchers``)
completes

- after ``%bifrost``: the commands, each command's flags and choices, the magics'
  connection names, the tags of the connection named (``%bifrost read plc tank.``),
  ``TAG=`` for the writable tags of ``%bifrost write``, background recordings for
  ``%bifrost stop``, tag tables for ``--tags``;
- in Python: tag names inside the string being typed in ``plc.read(["tank.``,
  ``plc.record([...``, ``plc.write({"...``, ``plc.tags["`` and ``table["`` (a TagTable),
  where ``plc`` is a connection in the notebook's namespace. Nothing is evaluated: the
  name before the dot is looked up in the namespace, nothing else.

When it completes, it suppresses the other matchers, so ``%bifrost re<Tab>`` offers
``read`` and ``record``, not IPython's ``%recall``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["bifrost_completions", "register_completions", "unregister_completions"]

_MAGIC = re.compile(r"(?:^|[=(]\s*)(?P<prefix>%%?)bifrost\s+(?P<rest>.*)$")
_CALL = re.compile(
    r"(?P<obj>[A-Za-z_]\w*)\s*\.\s*(?P<method>read|read_value|read_result|record|subscribe"
    r"|explain|resolve|write)\s*\((?P<args>[^()]*)$"
)
_TAGS_KEY = re.compile(
    r"(?P<obj>[A-Za-z_]\w*)(?P<tags>\s*\.\s*tags)?\s*\[\s*(?P<open>[\"'])(?P<text>[^\"']*)$"
)
_OPEN_STRING = re.compile(r"(?P<open>[\"'])(?P<text>[^\"']*)$")
_URLS = ("sim", "sim:modbus", "sim:s7", "sim:opcua", "modbus://", "s7://", "opc.tcp://")
_MATCHER_ID = "bifrost.jupyter.completion"


def register_completions(ipython: Any) -> None:
    """Add bifrost's matcher to ``ipython``'s completer (once)."""
    completer = getattr(ipython, "Completer", None)
    if completer is None:
        return
    if any(
        getattr(m, "matcher_identifier", None) == _MATCHER_ID for m in completer.custom_matchers
    ):
        return

    def matcher(context: Any) -> dict[str, Any]:
        from IPython.core.completer import SimpleCompletion

        found = bifrost_completions(
            context.text_until_cursor, ipython.user_ns, first_line=context.cursor_line == 0
        )
        if found is None:
            return {"completions": [], "suppress": False}
        fragment, items = found
        return {
            "completions": [SimpleCompletion(text=text, type=kind) for text, kind in items],
            "matched_fragment": fragment,
            "suppress": True,
            "ordered": True,
        }

    # The attributes IPython's `context_matcher` decorator would set (without importing
    # IPython's completer for a plain `import bifrost`).
    matcher.matcher_api_version = 2  # type: ignore[attr-defined]
    matcher.matcher_identifier = _MATCHER_ID  # type: ignore[attr-defined]
    matcher.matcher_priority = 0  # type: ignore[attr-defined]
    completer.custom_matchers.append(matcher)


def unregister_completions(ipython: Any) -> None:
    """Remove bifrost's matcher from ``ipython``'s completer."""
    completer = getattr(ipython, "Completer", None)
    if completer is None:
        return
    completer.custom_matchers[:] = [
        m
        for m in completer.custom_matchers
        if getattr(m, "matcher_identifier", None) != _MATCHER_ID
    ]


def bifrost_completions(
    text: str, namespace: dict[str, Any], *, first_line: bool = True
) -> tuple[str, list[tuple[str, str]]] | None:
    """What to offer for ``text`` (the line up to the cursor), or None if not ours.

    Returns the fragment the completions replace and ``(completion, kind)`` pairs.
    """
    magic = _MAGIC.search(text)
    if magic is not None and (magic.group("prefix") == "%" or first_line):
        return _magic(magic.group("prefix") == "%%", magic.group("rest"), namespace)
    return _python(text, namespace)


# -- %bifrost ---------------------------------------------------------------------------------
def _magic(cell: bool, rest: str, namespace: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    from bifrost.jupyter.magics import COMMANDS

    words = rest.split()
    current = "" if not rest or rest[-1].isspace() else words.pop()
    if not words:
        names = [c.name for c in COMMANDS if c.cell == cell]
        return current, _starting(current, names, "command")
    command = COMMANDS.get(words[0])
    if command is None:
        return current, []
    actions = command.parser._actions
    takes_value = {
        flag: action for action in actions for flag in action.option_strings if action.nargs != 0
    }
    if current.startswith("-"):
        flags = [f for a in actions for f in a.option_strings if f.startswith("--")]
        return current, _starting(current, flags, "flag")
    previous = words[-1] if len(words) > 1 else ""
    if previous in takes_value:
        return current, _starting(current, _flag_values(takes_value[previous], namespace), "value")
    # Positional words typed so far (a flag's value is not one).
    positionals: list[str] = []
    skip = False
    for word in words[1:]:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in takes_value
        else:
            positionals.append(word)
    return current, _positional(command.name, positionals, current, namespace)


def _magics(namespace: dict[str, Any]) -> Any:
    magics = sys.modules.get("bifrost.jupyter.magics")
    if magics is None:
        return None
    return next(
        (
            m
            for m in magics._INSTANCES.values()
            if m.shell is not None and m.shell.user_ns is namespace
        ),
        None,
    )


def _positional(
    command: str, typed: list[str], current: str, namespace: dict[str, Any]
) -> list[tuple[str, str]]:
    from bifrost.jupyter.magics import COMMANDS

    magics = _magics(namespace)
    connections: dict[str, Any] = dict(magics.state.connections) if magics is not None else {}
    position = len(typed)
    if command in ("read", "browse", "write", "record"):
        if position == 0:
            return _starting(current, list(connections), "connection")
        if command == "browse":
            return []
        connection = connections.get(typed[0])
        if connection is None:
            return []
        tags = list(connection.tags)
        if command == "write":
            return _starting(current, [f"{t.name}=" for t in tags if t.writable], "tag")
        return _starting(current, [t.name for t in tags if t.name not in typed[1:]], "tag")
    if command == "connect" and position == 1:
        return _starting(current, list(_URLS), "url")
    if command == "stop":
        running = list(magics.state.recordings) if magics is not None else []
        return _starting(current, [r for r in running if r not in typed], "recording")
    if command == "help" and position == 0:
        return _starting(current, [c.name for c in COMMANDS], "command")
    for action in COMMANDS[command].parser._actions:
        if not action.option_strings and action.choices and position == 0:
            return _starting(current, list(action.choices), "choice")
    return []


def _flag_values(action: Any, namespace: dict[str, Any]) -> list[str]:
    if action.choices:
        return list(action.choices)
    if action.dest == "tags":
        from bifrost.tags import TagTable

        return [
            k for k, v in namespace.items() if isinstance(v, TagTable) and not k.startswith("_")
        ]
    if action.dest == "attach":
        magics = _magics(namespace)
        return list(magics.state.connections) if magics is not None else []
    return []


# -- Python -----------------------------------------------------------------------------------
def _python(text: str, namespace: dict[str, Any]) -> tuple[str, list[tuple[str, str]]] | None:
    key = _TAGS_KEY.search(text)
    if key is not None:
        owner = namespace.get(key.group("obj"))
        table = _tag_table(owner) if key.group("tags") else _as_table(owner)
        if table is not None:
            names = [t.name for t in table]
            return key.group("text"), _starting(key.group("text"), names, "tag")
    call = _CALL.search(text)
    if call is None:
        return None
    table = _tag_table(namespace.get(call.group("obj")))
    if table is None:
        return None
    args = call.group("args")
    string = _OPEN_STRING.search(args)
    # Inside a string only if the quotes before it are balanced.
    if string is None or _quotes_open(args[: string.start()]):
        return None
    prefix = string.group("text")
    tags = list(table)
    if call.group("method") == "write":
        tags = [t for t in tags if t.writable]
    return prefix, _starting(prefix, [t.name for t in tags], "tag")


def _tag_table(owner: Any) -> Any:
    """The tag table of a connection (sync or async), or None for anything else."""
    classes = []
    for module, name in (("bifrost.connection", "Connection"), ("bifrost.aio", "AsyncConnection")):
        loaded = sys.modules.get(module)
        if loaded is not None:
            classes.append(getattr(loaded, name))
    if classes and isinstance(owner, tuple(classes)):
        connection: Any = owner
        return connection.tags
    return None


def _as_table(owner: Any) -> Any:
    tags = sys.modules.get("bifrost.tags")
    if tags is not None and isinstance(owner, tags.TagTable):
        return owner
    return None


def _quotes_open(text: str) -> bool:
    quote = None
    for char in text:
        if quote is None and char in "\"'":
            quote = char
        elif char == quote:
            quote = None
    return quote is not None


def _starting(prefix: str, candidates: Iterable[str], kind: str) -> list[tuple[str, str]]:
    return [(c, kind) for c in dict.fromkeys(candidates) if c.startswith(prefix)]
