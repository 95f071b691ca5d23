"""The ``bifrost`` command line: sim, demo, read, browse, record.

This module is the bifrost-cli distribution, which installs the ``bifrost`` script. Other
distributions add subcommands through the ``bifrost.cli`` entry-point group: each entry
point names a ``typer.Typer`` or a ``main(argv) -> int`` function (an argparse tool's),
which becomes the subcommand of the entry point's name and gets the rest of the command
line (``--help`` included). It is imported only when its subcommand runs::

    [project.entry-points."bifrost.cli"]
    gateway = "bifrost.cloud.gateway:main"

Only typer and rich load before a command runs (``bifrost --help`` stays fast); bifrost
loads pandas when a command first connects.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

from bifrost._extras import require

typer = require("typer", "The bifrost command line")
require("rich", "The bifrost command line")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from typer import Context  # noqa: E402

import bifrost as bf  # noqa: E402

app = typer.Typer(
    name="bifrost",
    help="Industrial protocols from the command line: read, browse, record, simulate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"bifrost {bf.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Bifrost: Modbus, S7 and OPC UA as easy as a web API."""


def _table(frame: Any, title: str = "") -> Table:
    table = Table(title=title or None, show_lines=False)
    table.add_column(frame.index.name or "", style="bold")
    for column in frame.columns:
        table.add_column(str(column))
    for label, row in frame.iterrows():
        table.add_row(str(label), *("" if v is None else str(v) for v in row.tolist()))
    return table


def _tags_option() -> Any:
    return typer.Option("--tags", "-t", help="Tag table (CSV or YAML).")


def _options_option() -> Any:
    return typer.Option(
        "--option",
        "-O",
        help="Connection option KEY=VALUE, repeatable (e.g. -O unit=2, -O security=None).",
    )


def _options(pairs: list[str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise bf.ConfigurationError(f"option {pair!r} is not KEY=VALUE")
        options[key.strip()] = _option_value(value.strip())
    return options


def _option_value(text: str) -> Any:
    # Numbers and booleans as the connection expects them; everything else stays text.
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


@app.command()
def read(
    url: Annotated[str, typer.Argument(help="Device URL, e.g. modbus://127.0.0.1:5020")],
    tags: Annotated[list[str], typer.Argument(help="Tag names or addresses.")],
    tag_file: Annotated[Path | None, _tags_option()] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    option: Annotated[list[str] | None, _options_option()] = None,
) -> None:
    """Read tags once and print their values."""
    with bf.connect(url, tags=tag_file, **_options(option)) as plc:
        frame = plc.read(tags)
    if as_json:
        frame = frame.assign(timestamp=frame["timestamp"].map(lambda t: t.isoformat()))
        records = frame.reset_index().to_dict(orient="records")
        print(json.dumps(records, default=str))
    else:
        console.print(_table(frame))


@app.command()
def browse(
    url: Annotated[str, typer.Argument(help="Device URL.")],
    path: Annotated[str | None, typer.Argument(help="OPC UA node to start from.")] = None,
    depth: Annotated[int, typer.Option(help="Levels to descend (OPC UA).")] = 1,
    tag_file: Annotated[Path | None, _tags_option()] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    option: Annotated[list[str] | None, _options_option()] = None,
) -> None:
    """List what a device offers: OPC UA nodes, or the tag table (Modbus, S7)."""
    with bf.connect(url, tags=tag_file, **_options(option)) as plc:
        frame = plc.browse(path, depth)
    if as_json:
        print(json.dumps(frame.reset_index().to_dict(orient="records"), default=str))
    else:
        console.print(_table(frame))


@app.command()
def record(
    url: Annotated[str, typer.Argument(help="Device URL.")],
    tags: Annotated[list[str], typer.Argument(help="Tag names or addresses.")],
    interval: Annotated[str, typer.Option("--interval", "-i", help="e.g. 100ms")] = "1s",
    duration: Annotated[str, typer.Option("--duration", "-d", help="e.g. 10s")] = "10s",
    output: Annotated[Path, typer.Option("--output", "-o", help=".parquet/.zarr/.nc")] = Path(
        "recording.parquet"
    ),
    tag_file: Annotated[Path | None, _tags_option()] = None,
    option: Annotated[list[str] | None, _options_option()] = None,
) -> None:
    """Record tags on a fixed interval into a file."""
    with bf.connect(url, tags=tag_file, **_options(option)) as plc:
        recording = plc.record(tags, interval=interval, duration=duration)
    recording.save(output)
    stats = recording.stats
    console.print(
        f"{stats.samples} samples of {len(tags)} tags -> {output} "
        f"(missed cycles {stats.missed_cycles}, gaps {stats.gaps})"
    )


@app.command()
def sim(
    modbus: Annotated[int | None, typer.Option(help="Modbus TCP port (0: any free port).")] = None,
    s7: Annotated[int | None, typer.Option(help="S7 port (0: any free port).")] = None,
    opcua: Annotated[int | None, typer.Option(help="OPC UA port (0: any free port).")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the process models.")] = 1,
) -> None:
    """Run the simulated plant on loopback until stopped (Ctrl-C)."""
    ports = {
        name: port
        for name, port in (("modbus", modbus), ("s7", s7), ("opcua", opcua))
        if port is not None
    } or {"modbus": 5020}
    with bf.sim.Plant(seed=seed) as plant:
        urls = plant.serve(host="127.0.0.1", **ports)
        for name, address in urls.items():
            console.print(f"{name:7s} {address}")
        sys.stdout.flush()
        plant.run(seconds=seconds)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the results.")] = Path("demo-out"),
    seconds: Annotated[float, typer.Option(help="How long to record.")] = 10.0,
    interval: Annotated[str, typer.Option(help="Sampling interval.")] = "100ms",
) -> None:
    """Record the simulated plant over Modbus TCP; write Parquet, a trend PNG and a report."""
    from bifrost.report import summary_frame, write_report, write_trend

    out.mkdir(parents=True, exist_ok=True)
    with bf.sim.Plant(seed=1) as plant:
        urls = plant.serve(modbus=0)
        console.print(f"simulated plant serving Modbus TCP at {urls['modbus']}")
        with plant.connect("modbus", writable=True) as plc:
            names = plc.tags.names
            console.print(_table(plc.read(names)[["value", "unit", "quality"]], "first read"))
            # Stream to disk in the background and step the reactor's setpoint a third
            # of the way in, so the trend shows the temperature loop answering.
            recording = plc.record(
                names,
                interval=interval,
                duration=seconds,
                background=True,
                path=out / "recording.parquet",
            )
            stop = threading.Event()
            stop.wait(seconds / 3)
            setpoint = float(plc.read_value("reactor.setpoint")) + 15.0
            plc.write({"reactor.setpoint": setpoint})
            console.print(f"wrote reactor.setpoint = {setpoint:g} degC")
            recording.wait(seconds + 30)
    parquet = Path(recording.path or out / "recording.parquet")
    trend = write_trend(recording, out / "trend.png")
    report = write_report(recording, out / "report.html", trend.read_bytes())
    stats = recording.stats
    console.print(_table(summary_frame(recording).round(3), "recorded"))
    console.print(
        f"{stats.samples} samples x {len(names)} tags every {interval}; missed cycles "
        f"{stats.missed_cycles}, gaps {stats.gaps}, jitter p99 {stats.jitter_p99_ms:.2f} ms"
    )
    for path in (parquet, trend, report):
        console.print(f"wrote {path}")


PLUGIN_GROUP = "bifrost.cli"


def add_plugins(target: Any = app) -> None:
    """Add the subcommands that installed distributions declare under ``bifrost.cli``.

    Each is imported when it runs, not here: a plugin may import pandas (the gateway
    does), and ``bifrost --help`` stays fast.
    """
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=PLUGIN_GROUP):
        distribution = entry_point.dist.name if entry_point.dist is not None else "a plugin"
        _add_main(target, entry_point.name, entry_point.load, f"From {distribution}.")


def _add_main(target: Any, name: str, load: Any, summary: str) -> None:
    """Add the subcommand ``name``: ``load()`` gives a Typer app or ``main(argv) -> int``."""

    @target.command(
        name=name,
        help=f"{summary} `bifrost {name} --help` for its options.",
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def run(ctx: Context) -> None:
        command = load()
        if isinstance(command, typer.Typer):
            command = typer.main.get_command(command)
            raise typer.Exit(command.main(list(ctx.args), prog_name=f"bifrost {name}"))
        raise typer.Exit(command(list(ctx.args)) or 0)


def main() -> None:
    """Entry point of the ``bifrost`` script: errors print one clear line, not a traceback."""
    try:
        add_plugins()
        app()
    except bf.BifrostError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
