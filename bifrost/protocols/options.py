"""Connection options from a URL's query and keyword arguments, checked and converted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from bifrost.exceptions import ConfigurationError, value_repr

__all__ = ["convert", "flag", "query"]


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
    keys containing a ``hidden`` word never appear in messages.
    """
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
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10**400)
            shown = "<hidden>" if any(word in key for word in hidden) else value_repr(value)
            raise ConfigurationError(f"{protocol} option {key}={shown} is invalid") from None
    return values
