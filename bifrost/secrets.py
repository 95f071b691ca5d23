"""Secrets (passwords, keys) that never show up in a repr, a log or a saved notebook."""

from __future__ import annotations

import os

from bifrost.exceptions import ConfigurationError

__all__ = ["Secret", "secret"]


class Secret:
    """A value that is revealed only on purpose, with :meth:`reveal`.

    Its ``repr`` and ``str`` show where it comes from, never the value, so printing a
    connection or saving a notebook cannot leak it.
    """

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "literal") -> None:
        self._value = value
        self._source = source

    def reveal(self) -> str:
        """The secret value (pass it to the driver; do not print it)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._source)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def secret(reference: str) -> Secret:
    """Look up a secret by reference.

    Parameters
    ----------
    reference
        ``"env:NAME"`` reads the environment variable NAME; ``"keyring:SERVICE/USER"``
        reads the system keyring (needs the ``keyring`` package).

    Raises
    ------
    ConfigurationError
        When the reference is malformed or the secret is not set.
    """
    kind, _, name = reference.partition(":")
    if not name:
        raise ConfigurationError(
            f"secret reference {reference!r} needs a source, e.g. 'env:PLC_PASSWORD'"
        )
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise ConfigurationError(f"environment variable {name!r} is not set")
        return Secret(value, reference)
    if kind == "keyring":
        from bifrost._extras import require

        keyring = require("keyring", "Keyring secrets")
        service, _, user = name.partition("/")
        value = keyring.get_password(service, user)
        if value is None:
            raise ConfigurationError(f"no keyring entry for service {service!r}, user {user!r}")
        return Secret(str(value), reference)
    raise ConfigurationError(
        f"unknown secret source {kind!r} in {reference!r}; use env: or keyring:"
    )
