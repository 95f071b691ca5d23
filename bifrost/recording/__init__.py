"""Recording sessions: background sampling into columnar buffers, and their storage."""

from bifrost.recording.journal import (
    RecordingInUse,
    RecoveryWarning,
    StorageError,
    UnreadableRecording,
    recover,
)
from bifrost.recording.recorder import (
    RecordingStorageWarning,
    start_recording,
    start_subscribed_recording,
)
from bifrost.recording.session import Recording, RecordingStats
from bifrost.recording.store import open_recording, save_recording
from bifrost.recording.timing import seconds

__all__ = [
    "Recording",
    "RecordingInUse",
    "RecordingStats",
    "RecordingStorageWarning",
    "RecoveryWarning",
    "StorageError",
    "UnreadableRecording",
    "open_recording",
    "recover",
    "save_recording",
    "seconds",
    "start_recording",
    "start_subscribed_recording",
]
