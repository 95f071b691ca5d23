"""Recording sessions: background sampling into columnar buffers, and their storage."""

from bifrost.recording.recorder import start_recording, start_subscribed_recording
from bifrost.recording.session import Recording, RecordingStats
from bifrost.recording.store import open_recording, save_recording
from bifrost.recording.timing import seconds

__all__ = [
    "Recording",
    "RecordingStats",
    "open_recording",
    "save_recording",
    "seconds",
    "start_recording",
    "start_subscribed_recording",
]
