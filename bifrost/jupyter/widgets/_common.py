"""Helpers the widgets share: the error line they show, their refresh thread, timezones."""

from __future__ import annotations

import datetime as dt
import html
import threading
import zoneinfo
from collections.abc import Callable

from bifrost.exceptions import ConfigurationError

__all__ = ["Timezone", "error_html", "resolve_timezone", "timezone_name"]

Timezone = str | dt.tzinfo | None
"""A timezone name (``"Europe/Berlin"``, ``"UTC"``), a tzinfo, or None: the local zone."""


def resolve_timezone(tz: Timezone) -> dt.tzinfo:
    """The tzinfo for ``tz``; None gives the kernel's local zone (daylight saving included).

    Raises
    ------
    ConfigurationError
        For a name the timezone database does not know.
    """
    if isinstance(tz, dt.tzinfo):
        return tz
    if tz is None:
        # dateutil comes with pandas; its tzlocal follows the zone's DST rules, where
        # datetime.now().astimezone() would freeze today's offset.
        from dateutil.tz import tzlocal  # type: ignore[import-untyped]

        local: dt.tzinfo = tzlocal()
        return local
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"unknown timezone {tz!r}; give an IANA name such as 'Europe/Berlin', or 'UTC'"
        ) from exc


def timezone_name(tz: dt.tzinfo, at: dt.datetime | None = None) -> str:
    """``Europe/Berlin`` for a ZoneInfo, else the abbreviation in force (``CET``, ``UTC``)."""
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return key
    moment = (at or dt.datetime.now(dt.UTC)).astimezone(tz)
    return moment.tzname() or str(tz)


def error_html(error: BaseException) -> str:
    """A one-line red message for an error shown inside a widget."""
    text = html.escape(f"{type(error).__name__}: {error}")
    return f'<pre style="color:#cf222e;margin:2px 0;white-space:pre-wrap">{text}</pre>'


class _Ticker:
    """Calls ``tick`` every ``period`` seconds on a daemon thread until stopped.

    ``tick`` returns False to end the loop; exceptions end it too (and are kept in
    ``error``) so a broken display never spins.
    """

    def __init__(self, tick: Callable[[], bool], period: float, name: str) -> None:
        self._tick = tick
        self._period = max(0.05, float(period))
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._period):
                if not self._tick():
                    return
        except Exception as exc:  # keep the kernel quiet; the widget shows the error
            self.error = exc

    @property
    def alive(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop and wait for the thread (never from the thread itself)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
