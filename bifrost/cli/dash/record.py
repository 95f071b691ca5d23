"""Start and stop the dashboard's recording: one background recording streamed to a file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bifrost.exceptions import ConfigurationError

if TYPE_CHECKING:
    from bifrost.connection import Connection
    from bifrost.recording import Recording

__all__ = ["RecordControl"]

_STOP_TIMEOUT = 30.0  # seconds the last cycle and the file's final flush may take


class RecordControl:
    """One recording at a time of the selected tags into ``directory``.

    The file streams to disk while recording (``record(path=...)``), so what was sampled
    is on disk even if the dashboard is killed.
    """

    def __init__(self, connection: Connection, directory: Path, suffix: str = ".parquet") -> None:
        self._connection = connection
        self.directory = directory
        self.suffix = suffix
        self.recording: Recording | None = None
        self.path: Path | None = None

    @property
    def running(self) -> bool:
        """Whether a recording is sampling."""
        return self.recording is not None and self.recording.running

    def start(self, tags: Sequence[str], interval: float) -> Path:
        """Start recording ``tags`` every ``interval`` seconds; returns the file's path."""
        if self.running:
            raise ConfigurationError(f"a recording to {self.path} is running: stop it first")
        if not tags:
            raise ConfigurationError("select the tags to record first (space on a tag)")
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.directory / f"dash-{stamp}{self.suffix}"
        counter = 1
        while path.exists():  # two recordings started within one second
            counter += 1
            path = self.directory / f"dash-{stamp}-{counter}{self.suffix}"
        self.recording = self._connection.record(
            list(tags), interval=interval, background=True, path=path, progress=False
        )
        self.path = path
        return path

    def stop(self) -> Recording | None:
        """Stop the recording and wait until its file is complete (blocks: call off the UI)."""
        recording = self.recording
        if recording is None:
            return None
        recording.stop()
        recording.wait(_STOP_TIMEOUT)
        return recording

    def status(self) -> str:
        """One line for the status bar."""
        recording = self.recording
        if recording is None:
            return "not recording"
        stats = recording.stats
        state = "● recording" if recording.running else "recorded"
        return (
            f"{state} {stats.samples} samples → {self.path}"
            f" (missed {stats.missed_cycles}, gaps {stats.gaps})"
        )
