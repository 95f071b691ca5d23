"""ipywidgets for notebooks: browse tags, watch recordings, find a register's decoding.

Every widget works headless (set ``.value``, call ``Button.click()``), which is how the
tests drive them. Periodic updates (live trend, recorder status) run on a daemon thread
per widget: ipykernel sends widget updates from any thread, so a trend keeps moving
while other cells compute. Each widget's ``close()`` stops its thread.
"""

from __future__ import annotations

from bifrost._extras import require

# The check runs here, before any widget module is imported: importing a submodule runs
# this package first, so a missing extra is always reported with its install hint.
require("ipywidgets", "bifrost's notebook widgets")

from bifrost.jupyter.widgets._common import error_html  # noqa: E402
from bifrost.jupyter.widgets.decode_probe import DecodeProbe  # noqa: E402
from bifrost.jupyter.widgets.live_trend import LiveTrend  # noqa: E402
from bifrost.jupyter.widgets.live_trend import _minmax_indices as _minmax_indices  # noqa: E402
from bifrost.jupyter.widgets.live_trend import downsample_indices as downsample_indices  # noqa: E402
from bifrost.jupyter.widgets.recorder_panel import RecorderPanel  # noqa: E402
from bifrost.jupyter.widgets.tag_browser import TagBrowser  # noqa: E402

# The tests import _minmax_indices and tutorial 04 downsample_indices from this package;
# the redundant aliases re-export them without widening __all__ (what * imports).
__all__ = ["DecodeProbe", "LiveTrend", "RecorderPanel", "TagBrowser", "error_html"]
