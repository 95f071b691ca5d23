"""Rich HTML displays of connections, tag tables and recordings."""

from __future__ import annotations

import numpy as np

import bifrost as bf
from bifrost import _html
from bifrost.model import Quality, Tag


def test_good_threshold_matches_the_quality_model():
    assert Quality.UNCERTAIN == _html.GOOD_BELOW


def test_connection_html_shows_endpoint_state_and_tags(plant):
    plc = plant.connect("modbus")
    try:
        text = plc._repr_html_()
        assert plc.url in text
        assert "connected" in text
        assert "no (read-only)" in text
        assert f"<td>{len(plc.tags)}</td>" in text
    finally:
        plc.close()
    assert "closed" in plc._repr_html_()


def test_tag_table_html_escapes_and_cuts_long_tables():
    tags = [Tag(f"t{i}", f"hr:{i}", description="<b>x</b>") for i in range(25)]
    text = bf.TagTable(tags)._repr_html_()
    assert "TagTable: 25 tags" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text
    assert "<b>x</b>" not in text
    assert "… 5 more" in text
    scaled = bf.TagTable([Tag("h", "ir:4:int16", scale=0.1)])._repr_html_()
    assert "x0.1 +0" in scaled


def test_recording_html_summarises_samples_span_and_quality():
    rec = bf.Recording(
        [Tag("level", "hr:0:float32", unit="m"), Tag("state", "hr:12")], ["float32", "uint16"], 1.0
    )
    empty = rec._repr_html_()
    assert "no samples yet" in empty
    times = np.array([0, 1, 2, 3], dtype=np.int64) * 1_000_000_000
    values = np.array([[1.0, 0], [2.0, 1], [np.nan, np.nan], [4.0, 1]])
    quality = np.array([[0, 0], [0, 0], [130, 130], [0, 0]], dtype=np.uint8)
    rec.buffer.extend(times, values, np.empty((4, 2), dtype=object), quality)
    rec._finished.set()
    text = rec._repr_html_()
    assert "Recording" in text
    assert "stopped" in text
    assert "<td>4</td>" in text
    assert "1970-01-01T00:00:00.000 → 1970-01-01T00:00:03.000 UTC (3 s)" in text
    assert "75.0 %" in text  # 3 of 4 rows good
    assert '<td class="bf-n">4</td>' in text  # last value of level
    assert '<td class="bf-n">1</td>' in text  # min of level


def test_format_helpers():
    assert _html.format_seconds(0.1) == "100 ms"
    assert _html.format_seconds(75) == "1 min 15 s"
    assert _html.format_seconds(7260) == "2 h 1 min"
    assert _html.format_value(np.float32(0.1)) == "0.1"
    assert _html.format_value(float("nan")) == "NaN"
    assert _html.format_value(np.bool_(True)) == "True"


def test_recording_stats_print_rounded_and_counts_in_the_singular():
    rec = bf.Recording([Tag("a", "hr:0:float32")], ["float32"], 0.1)
    rec._timing.lateness.extend([0.0004169710000496707, 0.0012345678])
    rec.buffer.extend(
        np.array([1_700_000_000_000_000_000], dtype=np.int64),
        np.zeros((1, 1)),
        np.empty((1, 1), dtype=object),
        np.zeros((1, 1), dtype=np.uint8),
    )
    rec._finished.set()
    text = repr(rec.stats)
    # The issue: jitter_p50_ms=0.4169710000496707.
    assert "jitter_p50_ms=0.826," in text
    assert "jitter_max_ms=1.235," in text
    assert rec.stats.jitter_max_ms == 1.2345678  # the value itself stays exact
    assert repr(rec) == "<Recording stopped: 1 tag, 1 sample every 0.1 s>"
    rec.interrupted = True
    assert repr(rec).startswith("<Recording interrupted:")
    assert "interrupted by the user" in rec._repr_html_()
    assert rec.metadata["interrupted"]  # saved with the recording
