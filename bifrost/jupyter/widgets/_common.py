"""Helpers the widgets share: the error line they show and their refresh thread."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable

__all__ = ["error_html"]


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
