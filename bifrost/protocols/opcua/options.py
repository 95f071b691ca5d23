"""OPC UA connection settings: URL, security policy and mode, credentials and trust."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from bifrost.exceptions import ConfigurationError
from bifrost.protocols import options as _options
from bifrost.secrets import Secret, redact_url

__all__ = ["OpcUaOptions"]

_POLICIES = ("Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss")
_MODES = ("Sign", "SignAndEncrypt")


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)


def _as_secret(value: Any, what: str) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value, what)
    raise ConfigurationError(f"{what} must be a string or bf.secret(...)")


@dataclass(frozen=True)
class OpcUaOptions:
    """Connection settings, from the URL and keyword arguments.

    ``password`` and ``private_key_password`` are :class:`Secret`; the repr shows only
    where they came from.
    """

    url: str
    host: str
    port: int
    timeout: float = 3.0
    security_policy: str = "None"
    security_mode: str = "None"
    certificate: str | None = None
    private_key: str | None = None
    private_key_password: Secret | None = None
    user: str | None = None
    password: Secret | None = None
    server_certificate: str | None = None
    trust_server: bool | str = False
    max_nodes_per_read: int | None = None
    session_timeout: float = 600.0
    history_values_per_request: int = 1000

    @property
    def endpoint(self) -> str:
        """The server URL (without credentials)."""
        return self.url

    @property
    def secure(self) -> bool:
        """Whether a security policy other than None is used."""
        return self.security_policy != "None"

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> OpcUaOptions:
        """Parse ``opc.tcp://[user[:password]@]host:port/path?option=value``.

        Keyword arguments override query parameters. ``security`` is required:
        ``"None"``, or ``"Basic256Sha256,Sign"`` / ``"Basic256Sha256,SignAndEncrypt"``.
        """
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # an unclosed "[" of an IPv6 host
            raise ConfigurationError(f"{redact_url(url)!r}: {exc}") from None
        if parts.scheme.lower() != "opc.tcp":
            raise ConfigurationError(f"{redact_url(url)!r} is not an opc.tcp:// URL")
        settings: dict[str, Any] = {**_options.query(parts.query), **kwargs}
        try:
            host = parts.hostname or "127.0.0.1"
            port = parts.port if parts.port is not None else 4840
        except ValueError as exc:
            raise ConfigurationError(f"{redact_url(url)!r}: {exc}") from None
        if parts.username is not None:
            settings.setdefault("user", unquote(parts.username))
            if parts.password is not None:
                settings.setdefault(
                    "password", Secret(unquote(parts.password), "the URL's password")
                )
        netloc = host if parts.port is None else f"{host}:{port}"
        clean = urlunsplit(("opc.tcp", netloc, parts.path, "", ""))
        values: dict[str, Any] = {"url": clean, "host": host, "port": port}
        converters: dict[str, Callable[[Any], Any]] = {
            "timeout": float,
            "certificate": lambda v: str(Path(v)),
            "private_key": lambda v: str(Path(v)),
            "private_key_password": lambda v: _as_secret(v, "private_key_password"),
            "user": str,
            "password": lambda v: _as_secret(v, "password"),
            "server_certificate": lambda v: str(Path(v)),
            "trust_server": lambda v: (
                v if isinstance(v, str) and ":" in v and len(v) > 20 else _truthy(v)
            ),
            "max_nodes_per_read": int,
            "session_timeout": float,
            "history_values_per_request": int,
        }
        security = settings.pop("security", None)
        values.update(_options.convert(settings, converters, "OPC UA", extra_known=("security",)))
        values["security_policy"], values["security_mode"] = _parse_security(security)
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ConfigurationError for settings that cannot work (no I/O but file checks)."""
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout}")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port {self.port} is outside 1-65535")
        if self.max_nodes_per_read is not None and self.max_nodes_per_read < 1:
            raise ConfigurationError("max_nodes_per_read must be at least 1")
        if self.history_values_per_request < 1:
            raise ConfigurationError("history_values_per_request must be at least 1")
        if self.password is not None and not self.user:
            raise ConfigurationError("a password needs a user name (user=...)")
        if self.secure:
            if not self.certificate or not self.private_key:
                raise ConfigurationError(
                    f"security {self.security_policy},{self.security_mode} needs a client "
                    "certificate and private key: certificate='client.der', "
                    "private_key='client.pem'"
                )
            for what, path in (
                ("certificate", self.certificate),
                ("private_key", self.private_key),
            ):
                if not Path(path).is_file():
                    raise ConfigurationError(f"{what} file {path!r} does not exist")
        if self.server_certificate is not None:
            if not Path(self.server_certificate).is_file():
                raise ConfigurationError(
                    f"server_certificate file {self.server_certificate!r} does not exist"
                )
            if self.trust_server:
                raise ConfigurationError(
                    "give either server_certificate= (a trusted certificate file) or "
                    "trust_server=, not both"
                )


def _parse_security(value: Any) -> tuple[str, str]:
    if value is None:
        raise ConfigurationError(
            "OPC UA connections need an explicit security setting: "
            "security='Basic256Sha256,SignAndEncrypt' (with certificate=, private_key=, and "
            "server_certificate= or trust_server=True), or security='None' to connect without "
            "signing or encryption"
        )
    text = str(value).replace(" ", "")
    if text.lower() in ("none", "none,none"):
        return "None", "None"
    policy, _, mode = text.partition(",")
    policies = {p.lower(): p for p in _POLICIES}
    modes = {m.lower(): m for m in _MODES}
    if policy.lower() not in policies:
        raise ConfigurationError(
            f"unknown OPC UA security policy {policy!r}; use one of None, {', '.join(_POLICIES)}"
        )
    if mode and mode.lower() not in modes:
        raise ConfigurationError(
            f"unknown OPC UA security mode {mode!r}; use Sign or SignAndEncrypt"
        )
    return policies[policy.lower()], modes[mode.lower()] if mode else "SignAndEncrypt"
