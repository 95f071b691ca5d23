"""MQTT source settings from a URL's query and keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from bifrost.exceptions import ConfigurationError
from bifrost.protocols.options import convert, flag, query
from bifrost.secrets import Secret

__all__ = ["MqttOptions"]


def _secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    raise ValueError("not a Secret")


@dataclass(frozen=True)
class MqttOptions:
    """Broker, credentials, TLS and the cache's staleness.

    ``stale``: seconds after which a cached value reads as UNCERTAIN. ``group``: the
    Sparkplug group of an ``spb://host/GROUP`` URL. ``browse_wait``: seconds a browse
    listens for births.
    """

    scheme: str
    host: str
    port: int
    timeout: float = 3.0
    stale: float = 60.0
    username: str | None = None
    password: Secret | None = None
    client_id: str | None = None
    protocol: str = "5"
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    group: str | None = None
    browse_wait: float = 2.0

    @property
    def endpoint(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MqttOptions:
        """Parse ``mqtt://host:1883?stale=30``, ``mqtts://...``, ``spb://host/GROUP``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("mqtt", "mqtts", "spb"):
            raise ConfigurationError(f"{url!r} is not an mqtt://, mqtts:// or spb:// URL")
        if not parts.hostname:
            raise ConfigurationError(f"{url!r}: the URL names no broker host")
        if parts.password:
            raise ConfigurationError(
                f"the URL for {parts.hostname} holds a password; pass password=bf.secret(...)"
            )
        path = unquote(parts.path).strip("/")
        group = None
        if scheme == "spb":
            if not path or "/" in path:
                raise ConfigurationError(
                    f"{url!r}: an spb:// URL names one group: spb://host/GROUP"
                )
            group = path
        elif path:
            raise ConfigurationError(f"{url!r}: an MQTT URL has no path; topics are the tags")
        settings = {**query(parts.query), **kwargs}
        values = convert(
            settings,
            {
                "timeout": float,
                "stale": float,
                "username": str,
                "password": _secret,
                "client_id": str,
                "protocol": lambda v: {"5": "5", "3.1.1": "3.1.1", "311": "3.1.1"}[str(v)],
                "tls": flag,
                "ca": str,
                "cert": str,
                "key": str,
                "browse_wait": float,
            },
            "MQTT",
        )
        secure = scheme == "mqtts" or bool(values.get("tls"))
        try:
            port = parts.port or (8883 if secure else 1883)
        except ValueError:
            raise ConfigurationError(f"{url!r} has an invalid port") from None
        if parts.username and "username" not in values:
            values["username"] = unquote(parts.username)
        values["tls"] = secure
        return cls(scheme=scheme, host=parts.hostname, port=port, group=group, **values)
