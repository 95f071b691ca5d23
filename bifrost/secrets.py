"""Secrets (passwords, keys) that never show up in a repr, a log or a saved notebook."""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from bifrost.exceptions import ConfigurationError

__all__ = ["Secret", "redact_url", "secret"]

REDACTED = "***"
# Query keys whose values are credentials (compared lower-case, as substrings), so that
# ``?password=``, ``?private_key_password=``, ``?api_token=`` are all hidden.
_SECRET_KEYS = ("password", "passwd", "pwd", "secret", "token", "credential", "apikey", "api_key")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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


def redact_url(url: str) -> str:
    """``url`` without its credentials, for anything bifrost prints or stores.

    The password of the userinfo (``scheme://user:password@host``) and the values of
    query keys that name a credential (``password``, ``secret``, ``token``...) become
    ``***``; everything else, the user name included, is kept as written. Works for any
    scheme and never raises, so it is safe in ``repr`` and in error messages.
    """
    if not isinstance(url, str):
        url = str(url)
    match = _SCHEME.match(url)
    if match is None:
        return _redact_query(url)
    head, rest = url[: match.end()], url[match.end() :]
    # The userinfo ends at the last "@" before the query, not at the first "/": a
    # password typed with an unescaped "/" or "@" must still be hidden whole.
    before_query = rest.split("?", 1)[0].split("#", 1)[0]
    at = before_query.rfind("@")
    if at > 0 and ":" in before_query[:at]:
        user = before_query[:at].partition(":")[0]
        rest = f"{user}:{REDACTED}{rest[at:]}"
    return head + _redact_query(rest)


def _redact_query(text: str) -> str:
    path, mark, rest = text.partition("?")
    if not mark:
        return text
    query, hash_, fragment = rest.partition("#")
    pairs = []
    for pair in query.split("&"):
        key, equals, _ = pair.partition("=")
        name = unquote(key.replace("+", " ")).lower()
        secret = bool(equals) and any(word in name for word in _SECRET_KEYS)
        pairs.append(f"{key}={REDACTED}" if secret else pair)
    return f"{path}?{'&'.join(pairs)}{hash_}{fragment}"


def secret(reference: str) -> Secret:
    """Look up a secret by reference.

    Parameters
    ----------
    reference
        ``"env:NAME"`` reads the environment variable NAME; ``"keyring:SERVICE/USER"``
        reads the system keyring (needs the ``keyring`` package); ``"file:PATH"`` reads
        a file (a mounted container secret), without its trailing newline.

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
    if kind == "file":
        path = os.path.expanduser(name)
        try:
            with open(path, encoding="utf-8") as handle:
                value = handle.read().rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the secret file {path!r}: {exc.strerror or exc}"
            ) from None
        return Secret(value, reference)
    raise ConfigurationError(
        f"unknown secret source {kind!r} in {reference!r}; use env:, keyring: or file:"
    )
