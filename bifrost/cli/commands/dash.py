"""``bifrost dash``: the Textual dashboard of one connection (bifrost.cli.dash)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bifrost.cli.target import Options, TagArgs, TagFile, TargetArg, connect, resolve

__all__ = ["dash"]


def dash(
    target: TargetArg,
    tags: TagArgs = None,
    writable: Annotated[
        bool, typer.Option("--writable", help="Offer the write dialog (w), with confirmation.")
    ] = False,
    record_dir: Annotated[
        Path | None,
        typer.Option(
            "--record-dir", help="Folder of recordings started with r.", show_default=False
        ),
    ] = None,
    tag_file: TagFile = None,
    option: Options = None,
) -> None:
    """Live dashboard in the terminal: tags, values, trend, recording, writes; q quits."""
    import importlib

    device = resolve(target, tag_file, option)
    allowed = writable or device.writable
    try:
        dashboard = importlib.import_module("bifrost.cli.dash")
    except ModuleNotFoundError as exc:
        from bifrost.exceptions import MissingDependency

        raise MissingDependency(
            f"bifrost dash needs textual ({exc.name} is missing): pip install bifrost-cli"
        ) from None
    plc = connect(device, writable=allowed)
    try:
        code = dashboard.run(plc, tags or None, writable=allowed, record_dir=record_dir)
    finally:
        plc.close()
    raise typer.Exit(code)
