"""Driver libraries' log records in notebooks: warnings and worse only, unless asked.

In a kernel nobody configures logging, so Python's last-resort handler prints every
record at WARNING or above to stderr, a red box under the cell. bifrost reports what
goes wrong as its own errors; the libraries underneath should not add lines of theirs.
:func:`quiet_driver_logs` sets the level of each driver library's logger that nobody
has set (a level the user set is kept: that is "asked"):

- ``pymodbus`` and ``snap7`` at CRITICAL, as their drivers set them when imported
  (whichever comes first): they log every refused item and dropped connection as a
  warning, which bifrost turns into exceptions and quality codes;
- ``asyncua.server`` at CRITICAL: in a notebook it is the simulated plant's server,
  whose service faults (``BadNoSubscription`` after a subscription was cancelled) are
  answers to bifrost's client, which reports them itself.

The OPC UA client's loggers are left to the driver, which already quiets them.
"""

from __future__ import annotations

import logging

__all__ = ["DRIVER_LOG_LEVELS", "quiet_driver_logs"]

DRIVER_LOG_LEVELS = {
    "pymodbus": logging.CRITICAL,
    "snap7": logging.CRITICAL,
    "asyncua.server": logging.CRITICAL,
}
"""The level given to each logger that has none of its own."""


def quiet_driver_logs() -> list[str]:
    """Give the driver libraries' loggers their levels; returns the names changed."""
    changed = []
    for name, level in DRIVER_LOG_LEVELS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
            changed.append(name)
    return changed
