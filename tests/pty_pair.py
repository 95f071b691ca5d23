"""Two linked pseudo-terminals from Debian's socat: a serial line without hardware."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def pty_pair(folder: Path, a: str = "server", b: str = "client") -> Iterator[tuple[str, str]]:
    """The paths of two ends of one line (``folder/a``, ``folder/b``); socat stops after."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.fail("socat is needed for the RTU tests (apt-get install socat; .ci/run does)")
    first, second = folder / a, folder / b
    process = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={first}", f"pty,raw,echo=0,link={second}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if first.exists() and second.exists():
                break
            time.sleep(0.02)
        else:
            pytest.fail("socat did not create the pty pair")
        yield str(first), str(second)
    finally:
        process.terminate()
        process.wait(5)
