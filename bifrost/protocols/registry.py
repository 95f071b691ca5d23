"""Protocol drivers, found by URL scheme through the ``bifrost.protocols`` entry points.

Each protocol package registers one entry point per URL scheme it serves, naming a
driver factory ``factory(url, **options) -> Driver``::

    [project.entry-points."bifrost.protocols"]
    "opc.tcp" = "bifrost.protocols.opcua:create_driver"

The core names no protocol itself, so a protocol shipped in another distribution, or a
third party's, plugs in by being installed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any
from urllib.parse import urlsplit

from bifrost.exceptions import BifrostError, ConfigurationError, value_repr
from bifrost.protocols.base import Driver
from bifrost.secrets import redact_url

__all__ = ["GROUP", "DriverFactory", "driver_for_url", "known_schemes"]

GROUP = "bifrost.protocols"

DriverFactory = Callable[..., Driver]

# Schemes served by bifrost's own distributions, for the install hint when the one that
# serves a scheme is missing. This is a message table, not a registry: a scheme works
# only once its entry point is installed.
_DISTRIBUTIONS = {
    "modbus": "bifrost-iot",
    "modbus+tcp": "bifrost-iot",
    "modbus+rtu": "bifrost-iot",
    "s7": "bifrost-iot",
    "opc.tcp": "bifrost-opcua",
    "mqtt": "bifrost-cloud",
    "mqtts": "bifrost-cloud",
}


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    # Looked up once per process: scanning installed metadata costs milliseconds, and
    # distributions are not installed into a running interpreter in normal use.
    return {ep.name.lower(): ep for ep in entry_points(group=GROUP)}


def known_schemes() -> list[str]:
    """The URL schemes of every installed protocol, sorted."""
    return sorted(_entry_points())


def driver_for_url(url: str, **options: Any) -> Driver:
    """Create (without connecting) the driver for ``url``.

    Raises
    ------
    ConfigurationError
        For a string that is not a URL, a scheme no installed protocol serves (naming
        the install command where a bifrost distribution serves it), or invalid options.
    """
    if not isinstance(url, str) or "://" not in url:
        shown = repr(redact_url(url)) if isinstance(url, str) else value_repr(url)
        raise ConfigurationError(
            f"{shown} is not a device URL; expected e.g. 'modbus://127.0.0.1:502', "
            "'modbus+rtu:///dev/ttyUSB0', 's7://host' or 'opc.tcp://host:4840'"
        )
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # e.g. an unclosed '[' of an IPv6 host
        raise ConfigurationError(f"{redact_url(url)!r} is not a valid URL: {exc}") from None
    entry_point = _entry_points().get(scheme)
    if entry_point is None:
        raise ConfigurationError(_unknown_scheme(scheme, redact_url(url)))
    factory: DriverFactory = entry_point.load()
    try:
        return factory(url, **options)
    except ConfigurationError as exc:
        # A protocol's message may name only the value ("port 0 is outside 1-65535").
        shown = redact_url(url)
        message = str(exc)
        if shown in message or type(exc) is not ConfigurationError:
            raise
        raise ConfigurationError(f"{message} (URL {shown!r})") from None
    except BifrostError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        # A protocol's own parsing (urllib, int(), a third party's factory) that let a
        # builtin error through: the user still gets the one error for bad configuration.
        raise ConfigurationError(
            f"invalid URL or options for {scheme}: {redact_url(url)!r}: {exc}"
        ) from exc


def _unknown_scheme(scheme: str, url: str) -> str:
    known = ", ".join(known_schemes()) or "none (is bifrost installed?)"
    distribution = _DISTRIBUTIONS.get(scheme)
    if distribution is not None:
        return (
            f"URL scheme {scheme!r} in {url!r} is served by the {distribution} distribution, "
            f"which is not installed; install it with: pip install {distribution}  "
            f"(installed schemes: {known})"
        )
    return f"unsupported URL scheme {scheme!r} in {url!r}; known: {known}"
