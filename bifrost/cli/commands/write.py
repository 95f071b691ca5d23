"""``bifrost write``: refused unless --writable; old -> new and a confirmation first.

Nothing goes on the wire before every value is checked (type, range, engineering
limits) and, unless ``--yes``, the user has seen the current values and agreed.
``--dry-run`` prints the requests a write would send and sends nothing, not even a read.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bifrost.cli import output
from bifrost.cli.target import (
    AsCsv,
    AsJson,
    Options,
    TagFile,
    TargetArg,
    complete_tags,
    connect,
    parse_value,
    resolve,
)
from bifrost.exceptions import ConfigurationError, WriteNotAllowed

if TYPE_CHECKING:
    from bifrost.tags import TagLike

__all__ = ["assignments", "write"]


def assignments(pairs: list[str]) -> dict[TagLike, Any]:
    """``["reactor.setpoint=55.5", "hr:12:float32=1"]`` -> ``{tag: value}``, in order.

    The value starts after the last ``=`` (addresses have no ``=``; OPC UA NodeIds like
    ``ns=2;s=X`` do, so their value is after the last one too).
    """
    values: dict[TagLike, Any] = {}
    for pair in pairs:
        tag, sep, text = pair.rpartition("=")
        if not sep or not tag.strip() or not text.strip():
            raise ConfigurationError(
                f"write: {pair!r} is not TAG=VALUE (e.g. reactor.setpoint=55.5)"
            )
        values[tag.strip()] = parse_value(text.strip())
    return values


def write(
    target: TargetArg,
    pairs: Annotated[
        list[str],
        typer.Argument(
            help="TAG=VALUE, repeatable (e.g. reactor.setpoint=55.5 hr:12:float32=1).",
            metavar="TAG=VALUE",
            autocompletion=complete_tags,
        ),
    ],
    writable: Annotated[
        bool, typer.Option("--writable", help="Allow the write (connections are read-only).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Write without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the requests; send nothing.")
    ] = False,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Write values: shows old -> new and asks first; refused without --writable (exit 6)."""
    fmt = output.choose_format(as_json, as_csv)
    values = assignments(pairs)
    device = resolve(target, tag_file, option)
    if dry_run:
        with connect(device) as plc:
            requests = plc.write(values, dry_run=True)
        if requests is not None:
            output.emit_frame(requests, fmt, "dry run: nothing sent")
        return
    if not (writable or device.writable):
        # Before connecting: a refused write sends nothing at all.
        raise WriteNotAllowed(
            f"writing to {'@' + device.profile if device.profile else device.url} needs "
            "--writable; --dry-run shows the requests without it"
        )
    with connect(device, writable=True) as plc:
        # The same checks as the write itself, before the user is asked anything.
        plc.write(values, dry_run=True)
        before = plc.read(list(values), errors="quality")
        rows = [
            {
                "tag": tag,
                "old": before["value"].iloc[i],
                "new": value,
                "unit": before["unit"].iloc[i] if "unit" in before else "",
                "quality": before["quality"].iloc[i],
            }
            for i, (tag, value) in enumerate(values.items())
        ]
        if not yes:
            output.emit_records(rows, "table", "old -> new")
            if not _confirmed(len(rows)):
                output.errors.print("write cancelled: nothing was written", markup=False)
                raise typer.Exit(6)
        plc.write(values)
    if fmt == "table" and not yes:
        # The table was shown before the question; say what happened.
        output.out.print(f"wrote {len(rows)} value{'s' if len(rows) != 1 else ''}", markup=False)
    else:
        output.emit_records(rows, fmt, "written")


def _confirmed(count: int) -> bool:
    question = f"write {count} value{'s' if count != 1 else ''}?"
    if not sys.stdin.isatty():
        # A script pipes its answer in; no answer (EOF) is a no.
        print(f"{question} [y/N]: ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline().strip().lower()
        return answer in ("y", "yes")
    return typer.confirm(question, default=False)
