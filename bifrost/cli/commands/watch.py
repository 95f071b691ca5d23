"""``bifrost watch``: a live table in the terminal, until --duration or Ctrl-C.

Each cycle is one planned read (``errors="quality"``: a failing tag shows its quality,
it does not end the watch). Per tag: value, quality, age of the value, min/max seen and
a sparkline of the recent values. ``--json`` prints one line per cycle instead (JSON
lines: one object per tag and cycle), for piping into other tools.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from bifrost.cli import output
from bifrost.cli.commands.read import tag_list
from bifrost.cli.target import AsJson, Options, TagArgs, TagFile, TargetArg, connect, resolve, span

__all__ = ["Trace", "sparkline", "watch"]

_BARS = "▁▂▃▄▅▆▇█"
_HISTORY = 40


def sparkline(values: list[float]) -> str:
    """Unicode bars for ``values`` (gaps as spaces), scaled to their own range."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low
    bars = []
    for v in values:
        if not math.isfinite(v):
            bars.append(" ")
        else:
            level = 0 if span == 0 else round((v - low) / span * (len(_BARS) - 1))
            bars.append(_BARS[level])
    return "".join(bars)


@dataclass
class Trace:
    """What the watch remembers of one tag."""

    low: float = math.inf
    high: float = -math.inf
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=_HISTORY))

    def add(self, value: Any, good: bool) -> None:
        """Count a reading (a number with good quality moves min/max)."""
        number = _number(value)
        if good and number is not None:
            self.low, self.high = min(self.low, number), max(self.high, number)
            self.recent.append(number)
        else:
            self.recent.append(math.nan)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def watch(
    target: TargetArg,
    tags: TagArgs = None,
    interval: Annotated[str, typer.Option("--interval", "-i", help="e.g. 500ms, 1s.")] = "1s",
    duration: Annotated[
        str | None, typer.Option("--duration", "-d", help="e.g. 30s (default: until Ctrl-C).")
    ] = None,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
) -> None:
    """Watch tags live: value, quality, age, min/max and a sparkline; Ctrl-C stops."""
    period = span(interval, "--interval")
    limit = span(duration, "--duration") if duration is not None else None
    with connect(resolve(target, tag_file, option)) as plc:
        names = tag_list(tags, plc.tags.names, "watch")
        plc.resolve(names)  # a bad tag fails before the screen changes
        traces = {name: Trace() for name in names}
        try:
            if as_json:
                _json_lines(plc, names, traces, period, limit)
            else:
                _live(plc, names, traces, period, limit)
        except KeyboardInterrupt:
            pass


def _cycles(period: float, limit: float | None) -> Any:
    """Yield on a fixed grid (monotonic clock) until ``limit`` seconds have passed."""
    started = time.monotonic()
    n = 0
    while limit is None or time.monotonic() - started < limit:
        yield n
        n += 1
        wait = started + n * period - time.monotonic()
        if wait > 0:
            time.sleep(wait)


def _read(plc: Any, names: list[str], traces: dict[str, Trace]) -> list[dict[str, Any]]:
    import pandas as pd

    frame = plc.read(names, errors="quality")
    now = pd.Timestamp.now(tz="UTC")
    rows = []
    for row in output.records(frame):
        trace = traces[str(row["tag"])]
        trace.add(row.get("value"), row.get("quality") == "good")
        stamp = pd.Timestamp(row["timestamp"]) if row.get("timestamp") else None
        rows.append(
            {
                **row,
                "age_s": None if stamp is None else round((now - stamp).total_seconds(), 3),
                "min": trace.low if math.isfinite(trace.low) else None,
                "max": trace.high if math.isfinite(trace.high) else None,
                "trend": sparkline(list(trace.recent)),
            }
        )
    return rows


def _json_lines(
    plc: Any, names: list[str], traces: dict[str, Trace], period: float, limit: float | None
) -> None:
    for _ in _cycles(period, limit):
        for row in _read(plc, names, traces):
            row.pop("trend")
            print(json.dumps(row), flush=True)


_COLUMNS = ["tag", "value", "unit", "quality", "age_s", "min", "max", "trend"]


def _live(
    plc: Any, names: list[str], traces: dict[str, Trace], period: float, limit: float | None
) -> None:
    from rich.live import Live

    rows: list[dict[str, Any]] = []
    title = f"{plc.url}  every {period:g} s  (Ctrl-C stops)"
    if not output.is_terminal():
        # No screen to redraw: the table of the last cycle, once, when the watch ends.
        try:
            for _ in _cycles(period, limit):
                rows = _read(plc, names, traces)
        finally:
            output.out.print(output.table(rows, _COLUMNS, title))
        return
    with Live(console=output.out, auto_refresh=False) as live:
        for _ in _cycles(period, limit):
            rows = _read(plc, names, traces)
            live.update(output.table(rows, _COLUMNS, title), refresh=True)
