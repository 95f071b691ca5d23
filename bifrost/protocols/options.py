"""Connection options from a URL's query and keyword arguments, checked and converted."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bifrost.exceptions import ConfigurationError, value_repr
from bifrost.tags import TableQuirks, key_lines

__all__ = ["TABLE_QUIRKS", "convert", "explain_errors", "flag", "load_yaml", "query"]

TABLE_QUIRKS = "table_quirks"
"""The option a connection passes its tag table's ``quirks:`` section in (a TableQuirks)."""


def query(query_string: str) -> dict[str, str]:
    """The URL's query as a dict (the last value wins for repeated keys)."""
    return {key: values[-1] for key, values in parse_qs(query_string).items()}


def flag(value: Any) -> bool:
    """``true``/``yes``/``1`` (any case) from a query string; other values as ``bool``."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def convert(
    settings: Mapping[str, Any],
    converters: Mapping[str, Callable[[Any], Any]],
    protocol: str,
    *,
    hidden: tuple[str, ...] = ("password",),
    extra_known: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Convert each option with its converter; unknown keys and bad values are errors.

    Options whose value is None are left out (the option's default applies). Values of
    keys containing a ``hidden`` word never appear in messages. A tag table's quirks
    (:data:`TABLE_QUIRKS`) are options too, below the explicit ones; a key ``protocol``
    has no option for is an error naming both.
    """
    table = settings.get(TABLE_QUIRKS)
    if table is not None:
        settings = {**table_options(table, converters, protocol), **settings}
        del settings[TABLE_QUIRKS]
    values: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in converters:
            known = ", ".join(sorted([*converters, *extra_known]))
            raise ConfigurationError(f"unknown {protocol} option {key!r}; known: {known}")
        if value is None:
            continue
        if isinstance(value, bool) and converters[key] in (int, float):
            raise ConfigurationError(
                f"{protocol} option {key}={value!r} is invalid: expected a number, not a bool"
            )
        try:
            values[key] = converters[key](value)
        except ConfigurationError:  # a converter's own message names the option and range
            raise
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10**400)
            shown = "<hidden>" if any(word in key for word in hidden) else value_repr(value)
            raise ConfigurationError(f"{protocol} option {key}={shown} is invalid") from None
    return values


def table_options(table: Any, known: Iterable[str], protocol: str) -> dict[str, Any]:
    """A tag table's quirks as options of ``protocol``, each key checked to be one."""
    if not isinstance(table, TableQuirks):
        raise ConfigurationError(
            f"{TABLE_QUIRKS} is set by the connection from its tag table's quirks: section"
        )
    options = table.options()
    names = set(known)
    for key in options:
        if key not in names:
            line = table.lines.get((key,))
            at = f" line {line}:" if line else ""
            raise ConfigurationError(
                f"{table.where}{at} {protocol} has no option {key!r}: this tag table's "
                f"quirks cannot apply to a {protocol} connection ({protocol} options: "
                f"{', '.join(sorted(names))})"
            )
    return options


def load_yaml(path: str | os.PathLike[str], what: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """A YAML file's data and the line of each key path in it, for messages.

    Raises
    ------
    ConfigurationError
        If the file cannot be read or is not YAML, naming the file.
    """
    import yaml

    where = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {where}: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{where}: not valid YAML: {exc}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        key_lines(node, (), lines)
    return data, lines


def explain_errors(
    errors: Sequence[Mapping[str, Any]], where: str, lines: Mapping[tuple[Any, ...], int]
) -> list[str]:
    """One ``line N: key.path: message`` per pydantic error, duplicates dropped."""
    problems = []
    for error in errors:
        loc = tuple(error["loc"])
        # pydantic adds the union member tried ("str", "list[...]"): keep the real keys.
        keys = [k for k in loc if isinstance(k, int) or "[" not in str(k)]
        line = 0
        for end in range(len(keys), -1, -1):
            if tuple(keys[:end]) in lines:
                line = lines[tuple(keys[:end])]
                break
        key = ".".join(str(k) for k in keys) or "(top level)"
        at = f"line {line}: " if line else ""
        problems.append(f"{at}{key}: {error['msg']}")
    return list(dict.fromkeys(problems))
