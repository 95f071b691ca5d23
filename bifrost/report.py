"""A trend plot and a self-contained HTML report of a recording (used by ``bifrost demo``)."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bifrost._extras import require
from bifrost.recording import Recording

__all__ = ["summary_frame", "write_report", "write_trend"]


def summary_frame(recording: Recording) -> pd.DataFrame:
    """Per tag: unit, samples, good share, min, mean, max, last value."""
    frame = recording.to_pandas()
    quality = recording.quality_frame()
    rows = []
    for tag in recording.tags:
        column = frame[tag.name]
        numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        values = column.astype("float64") if numeric else None
        rows.append(
            {
                "tag": tag.name,
                "unit": tag.unit,
                "samples": int(column.notna().sum()),
                "good %": float((quality[tag.name] == "good").mean() * 100) if len(column) else 0.0,
                "min": float(np.nanmin(values))
                if values is not None and values.notna().any()
                else None,
                "mean": float(np.nanmean(values))
                if values is not None and values.notna().any()
                else None,
                "max": float(np.nanmax(values))
                if values is not None and values.notna().any()
                else None,
                "last": column.iloc[-1] if len(column) else None,
            }
        )
    return pd.DataFrame(rows).set_index("tag")


def _figure(recording: Recording) -> bytes:
    plt = require("matplotlib.pyplot", "Trend plots")
    frame = recording.to_pandas()
    numeric = [
        t
        for t in recording.tags
        if pd.api.types.is_numeric_dtype(frame[t.name].dtype)
        or pd.api.types.is_bool_dtype(frame[t.name].dtype)
    ]
    rows = max(1, len(numeric))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.6 * rows + 0.8), sharex=True, squeeze=False)
    for axis, tag in zip(axes[:, 0], numeric, strict=False):
        axis.plot(frame.index, frame[tag.name].astype("float64"), linewidth=1.0)
        axis.set_ylabel(f"{tag.name}\n[{tag.unit}]" if tag.unit else tag.name, fontsize=8)
        axis.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("time (UTC)")
    fig.suptitle(f"bifrost recording: {recording.metadata.get('url', '')}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def write_trend(recording: Recording, path: str | os.PathLike[str]) -> Path:
    """Save a stacked trend plot of every numeric tag as PNG."""
    target = Path(path)
    target.write_bytes(_figure(recording))
    return target


def write_report(
    recording: Recording, path: str | os.PathLike[str], trend_png: bytes | None = None
) -> Path:
    """Write a self-contained HTML report: session facts, statistics, summary, trend."""
    png = trend_png if trend_png is not None else _figure(recording)
    stats = recording.stats
    facts = {
        "source": recording.metadata.get("url", ""),
        "protocol": recording.metadata.get("protocol", ""),
        "started (UTC)": recording.metadata.get("started", ""),
        "stopped (UTC)": recording.metadata.get("stopped", ""),
        "interval": f"{recording.interval_s * 1e3:g} ms",
        "samples": stats.samples,
        "missed cycles": stats.missed_cycles,
        "gaps": stats.gaps,
        "reconnects": stats.reconnects,
        "jitter p50 / p99": f"{stats.jitter_p50_ms:.2f} / {stats.jitter_p99_ms:.2f} ms",
        "bifrost": recording.metadata.get("bifrost_version", ""),
    }
    fact_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    summary = summary_frame(recording).to_html(float_format=lambda v: f"{v:.4g}", na_rep="")
    image = base64.b64encode(png).decode("ascii")
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bifrost recording report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #f4f4f4; }}
</style></head><body>
<h1>bifrost recording report</h1>
<h2>Session</h2><table>{fact_rows}</table>
<h2>Tags</h2>{summary}
<h2>Trend</h2><img alt="trend of the recorded tags" src="data:image/png;base64,{image}">
</body></html>
"""
    target = Path(path)
    target.write_text(document, encoding="utf-8")
    return target
