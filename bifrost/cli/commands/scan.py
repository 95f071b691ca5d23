"""``bifrost scan``: which addresses a Modbus device answers, its batch, pipelining; reads only.

The terminal side of :meth:`bifrost.Connection.scan`: one row per readable or unreadable
range, a summary line (largest batch per table, pipelining, requests sent), and with
``--quirks-out FILE`` the quirks found, for ``-O quirks=FILE`` or ``bf.connect(url,
quirks=FILE)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bifrost.cli import output
from bifrost.cli.target import AsCsv, AsJson, Options, TagFile, TargetArg, connect, resolve

__all__ = ["scan"]


def scan(
    target: TargetArg,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", "-T", help="hr, ir, co or di; repeat for several [default: hr]."),
    ] = None,
    start: Annotated[int, typer.Option(help="First address scanned.")] = 0,
    stop: Annotated[int, typer.Option(help="Last address scanned (inclusive).")] = 65535,
    unit: Annotated[
        int | None, typer.Option(help="Unit id [default: the connection's].", show_default=False)
    ] = None,
    resolution: Annotated[
        int, typer.Option(help="Readable blocks narrower than this inside a hole may be missed.")
    ] = 64,
    pipeline: Annotated[
        int, typer.Option(help="Requests in flight for the pipelining probe (0: no probe).")
    ] = 8,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds each read may wait [default: the connection's].", show_default=False
        ),
    ] = None,
    quirks_out: Annotated[
        Path | None,
        typer.Option(
            "--quirks-out", help="Save the quirks found to this YAML file.", show_default=False
        ),
    ] = None,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Find a Modbus device's readable ranges, largest batch and pipelining (never writes)."""
    fmt = output.choose_format(as_json, as_csv)
    with connect(resolve(target, tag_file, option)) as plc:
        result = plc.scan(
            table or ["hr"],
            start,
            stop,
            unit,
            resolution=resolution,
            pipeline=pipeline,
            timeout=timeout,
        )
    found = sorted(
        (name, a, b, kind)
        for name, scan in result.tables.items()
        for kind, ranges in ((True, scan.readable), (False, scan.unreadable))
        for a, b in ranges
    )
    rows = [
        {"table": name, "first": a, "last": b, "count": b - a + 1, "readable": kind}
        for name, a, b, kind in found
    ]
    if quirks_out is not None:
        result.to_quirks(quirks_out)
    if fmt != "table":
        output.emit_records(rows, fmt)
        return
    output.emit_records(rows, fmt, f"{result.endpoint} unit {result.unit}")
    batches = ", ".join(f"{name} {n}" for name, n in result.max_batch.items()) or "-"
    pipelining = {None: "not probed", True: "ok", False: "refused"}[result.pipeline_ok]
    reason = (
        f" ({result.pipelining.reason})" if result.pipelining and result.pipelining.reason else ""
    )
    lines = [
        f"largest batch: {batches}; pipelining {pipelining}{reason}; {result.requests} requests",
    ]
    if quirks_out is not None:
        lines.append(f"quirks saved to {quirks_out} (use: -O quirks={quirks_out})")
    for line in lines:
        output.out.print(line, markup=False)
