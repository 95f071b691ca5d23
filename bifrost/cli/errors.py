"""Exit codes per error class, and errors printed as one or two lines with their hint.

The codes are part of the command line's contract (scripts branch on them)::

    0  done                    3  connection failed or lost
    1  any other error          4  timeout
    2  bad address, tag, value  5  the device answered with a protocol error
       or configuration         6  write refused (read-only connection or tag)

Usage errors of the command line itself (an unknown option) are Click's, also 2.
"""

from __future__ import annotations

from bifrost import exceptions as exc

__all__ = ["EPILOG", "EXIT_CODES", "exit_code", "hint"]

# Most specific first: TimeoutError is a ConnectionError, WriteNotAllowed a plain error.
EXIT_CODES: tuple[tuple[type[exc.BifrostError] | tuple[type[exc.BifrostError], ...], int], ...] = (
    (exc.WriteNotAllowed, 6),
    (exc.TimeoutError, 4),
    (exc.ConnectionError, 3),
    (exc.ProtocolError, 5),
    (
        (
            exc.ConfigurationError,
            exc.AddressError,
            exc.TagNotFound,
            exc.ArgumentTypeError,
            exc.ValueOutOfRange,
            exc.MissingDependency,
        ),
        2,
    ),
)

EPILOG = (
    "Exit codes: 0 done, 1 other error, 2 bad address/tag/value/configuration, "
    "3 connection failed, 4 timeout, 5 protocol error from the device, 6 write refused. "
    "A URL can be @NAME, a profile from ~/.config/bifrost/profiles.yaml "
    "(--profiles FILE or BIFROST_PROFILES)."
)

_HINTS = {
    3: "check the URL and that the device is reachable (`bifrost sim` serves a simulated plant)",
    4: "the device is slow or not answering; a longer timeout: -O timeout=SECONDS",
    6: "writes need --writable (or `writable: true` in the profile)",
}


def exit_code(error: BaseException) -> int:
    """The exit code of ``error`` (1 for errors outside the table)."""
    for kinds, code in EXIT_CODES:
        if isinstance(error, kinds):
            return code
    return 1


def hint(error: BaseException) -> str:
    """A second line for errors whose message does not say what to do, else ``""``."""
    text = _HINTS.get(exit_code(error), "")
    # The message may already carry the same advice (a tag read-only in its table does).
    return "" if not text or "--writable" in str(error) else text
