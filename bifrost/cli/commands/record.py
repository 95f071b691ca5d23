"""``bifrost record``: sample tags into a file, with live progress; Ctrl-C keeps the file.

The recording streams to disk while it runs (crash-safe parts, renamed into the final
file at the end), so stopping it with Ctrl-C or SIGTERM, or running out of
``--duration``, always leaves a file that opens with ``bifrost.open_recording``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bifrost.cli import output
from bifrost.cli.commands.read import tag_list
from bifrost.cli.target import Options, TagArgs, TagFile, TargetArg, connect, resolve, span

if TYPE_CHECKING:
    from bifrost.recording import Recording

__all__ = ["record"]

_REFRESH_S = 0.25


def record(
    target: TargetArg,
    tags: TagArgs = None,
    interval: Annotated[str, typer.Option("--interval", "-i", help="e.g. 100ms, 1s.")] = "1s",
    duration: Annotated[
        str | None,
        typer.Option("--duration", "-d", help="e.g. 10s, 5min (default: until Ctrl-C)."),
    ] = None,
    output_path: Annotated[
        Path, typer.Option("--output", "-o", help="File: .parquet, .zarr or .nc.")
    ] = Path("recording.parquet"),
    mode: Annotated[
        str, typer.Option("--mode", help="poll, or subscribe (OPC UA data changes).")
    ] = "poll",
    tag_file: TagFile = None,
    option: Options = None,
) -> None:
    """Record tags on a fixed interval into a file; Ctrl-C stops and keeps the file."""
    period = span(interval, "--interval")
    limit = span(duration, "--duration") if duration is not None else None
    with connect(resolve(target, tag_file, option)) as plc:
        names = tag_list(tags, plc.tags.names, "record")
        recording = plc.record(
            names,
            interval=period,
            duration=limit,
            background=True,
            path=output_path,
            progress=False,
            mode=mode,  # type: ignore[arg-type]  # checked by record()
        )
        interrupted = _follow(recording, limit)
    stats = recording.stats
    stopped = "interrupted; " if interrupted else ""
    noun = "tag" if len(names) == 1 else "tags"
    output.out.print(
        f"{stopped}{stats.samples} samples of {len(names)} {noun} -> {recording.path} "
        f"({_size(Path(str(recording.path)))}; missed cycles {stats.missed_cycles}, gaps "
        f"{stats.gaps}, reconnects {stats.reconnects})",
        markup=False,
    )
    if recording.error is not None:
        raise recording.error


def _follow(recording: Recording, limit: float | None) -> bool:
    """Show progress until the recording ends; True if Ctrl-C (or SIGTERM) ended it."""
    from rich.live import Live

    # Both stop the recording the same way, even where a shell started it with SIGINT
    # ignored (a background job of a script).
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    interrupted = False
    try:
        if not output.is_terminal():
            # No screen to redraw: the summary line at the end says how it went.
            while recording.running:
                time.sleep(_REFRESH_S)
            return False
        with Live(
            _status(recording, started, limit),
            console=output.out,
            transient=True,
            auto_refresh=False,
        ) as live:
            while recording.running:
                time.sleep(_REFRESH_S)
                live.update(_status(recording, started, limit), refresh=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # Stopping flushes the last rows and renames the parts into the file.
        recording.stop()
        recording.wait()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return interrupted


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _status(recording: Recording, started: float, limit: float | None) -> str:
    stats = recording.stats
    elapsed = max(time.monotonic() - started, 1e-9)
    rate = stats.samples / elapsed
    of = f" / {limit:.0f} s" if limit else ""
    path = Path(str(recording.path))
    return (
        f"recording {elapsed:5.1f} s{of}  {stats.samples} samples ({rate:.1f}/s)  "
        f"missed cycles {stats.missed_cycles}  gaps {stats.gaps}  reconnects "
        f"{stats.reconnects}  {_size(path)}  (Ctrl-C stops and keeps the file)"
    )


def _size(path: Path) -> str:
    files: list[Path] = []
    for where in (path, path.with_name(path.name + ".parts")):
        if where.is_file():
            files.append(where)
        elif where.is_dir():
            files += [p for p in where.rglob("*") if p.is_file()]
    total = float(sum(p.stat().st_size for p in files))
    for unit in ("B", "kB", "MB", "GB"):
        if total < 1000 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1000
    return ""
