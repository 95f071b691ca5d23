"""``bifrost sim`` and ``bifrost demo``: the simulated plant, and a recorded tour of it."""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from bifrost.cli import output

__all__ = ["demo", "sim"]


def sim(
    modbus: Annotated[int | None, typer.Option(help="Modbus TCP port (0: any free port).")] = None,
    s7: Annotated[int | None, typer.Option(help="S7 port (0: any free port).")] = None,
    opcua: Annotated[int | None, typer.Option(help="OPC UA port (0: any free port).")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the process models.")] = 1,
    tags_out: Annotated[
        Path | None,
        typer.Option(
            "--tags-out",
            help="Write each protocol's tag table to DIR/<protocol>.yaml.",
            show_default=False,
        ),
    ] = None,
    modbus_holes: Annotated[
        str | None,
        typer.Option(
            help="Registers the Modbus server refuses (exception 2), e.g. hr:100-199,ir:8-15.",
            show_default=False,
        ),
    ] = None,
    modbus_max_batch: Annotated[
        int | None,
        typer.Option(
            help="Largest register read the Modbus server accepts (exception 3 above).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the simulated plant on loopback until stopped (Ctrl-C)."""
    import bifrost as bf

    ports = {
        name: port
        for name, port in (("modbus", modbus), ("s7", s7), ("opcua", opcua))
        if port is not None
    } or {"modbus": 5020}
    holes = _holes(modbus_holes) if modbus_holes else None
    with bf.sim.Plant(seed=seed) as plant:
        if holes or modbus_max_batch is not None:
            plant.modbus_device(holes=holes, max_batch=modbus_max_batch)
        urls = plant.serve(host="127.0.0.1", **ports)
        if tags_out is not None:
            tags_out.mkdir(parents=True, exist_ok=True)
            for name in urls:
                plant.tags(name).to_yaml(tags_out / f"{name}.yaml")
        for name, address in urls.items():
            print(f"{name:7s} {address}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
            plant.run(seconds=seconds)


def _holes(text: str) -> dict[str, list[tuple[int, int]]]:
    """``hr:100-199,ir:8`` as ``{"hr": [(100, 199)], "ir": [(8, 8)]}``."""
    from bifrost.exceptions import ConfigurationError

    holes: dict[str, list[tuple[int, int]]] = {}
    for item in text.split(","):
        table, _, span = item.strip().partition(":")
        first, _, last = span.partition("-")
        if not (first.isdigit() and (last.isdigit() or not last)) or len(span) > 11:
            raise ConfigurationError(
                f"--modbus-holes: {item.strip()!r} is not TABLE:FIRST-LAST (e.g. hr:100-199)"
            )
        holes.setdefault(table, []).append((int(first), int(last or first)))
    return holes


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the results.")] = Path("demo-out"),
    seconds: Annotated[float, typer.Option(help="How long to record.")] = 10.0,
    interval: Annotated[str, typer.Option(help="Sampling interval.")] = "100ms",
) -> None:
    """Record the simulated plant over Modbus TCP; write Parquet, a trend PNG and a report."""
    import bifrost as bf
    from bifrost.report import summary_frame, write_report, write_trend

    say = output.out.print
    out.mkdir(parents=True, exist_ok=True)
    with bf.sim.Plant(seed=1) as plant:
        urls = plant.serve(modbus=0)
        say(f"simulated plant serving Modbus TCP at {urls['modbus']}", markup=False)
        with plant.connect("modbus", writable=True) as plc:
            names = plc.tags.names
            output.emit_frame(plc.read(names)[["value", "unit", "quality"]], "table", "first read")
            # Stream to disk in the background and step the reactor's setpoint a third
            # of the way in, so the trend shows the temperature loop answering.
            recording = plc.record(
                names,
                interval=interval,
                duration=seconds,
                background=True,
                path=out / "recording.parquet",
            )
            threading.Event().wait(seconds / 3)
            setpoint = float(plc.read_value("reactor.setpoint")) + 15.0
            plc.write({"reactor.setpoint": setpoint})
            say(f"wrote reactor.setpoint = {setpoint:g} degC", markup=False)
            recording.wait(seconds + 30)
    parquet = Path(recording.path or out / "recording.parquet")
    trend = write_trend(recording, out / "trend.png")
    report = write_report(recording, out / "report.html", trend.read_bytes())
    stats = recording.stats
    output.emit_frame(summary_frame(recording).round(3), "table", "recorded")
    say(
        f"{stats.samples} samples x {len(names)} tags every {interval}; missed cycles "
        f"{stats.missed_cycles}, gaps {stats.gaps}, jitter p99 {stats.jitter_p99_ms:.2f} ms",
        markup=False,
    )
    for path in (parquet, trend, report):
        say(f"wrote {path}", markup=False)
