"""``bifrost tags check|convert``: validate tag tables, convert them, import other tools'.

``convert`` writes CSV or YAML (by suffix) from a bifrost tag table, or with ``--from``
from another tool's export: a Telegraf Modbus/S7/OPC UA input config, a Kepware CSV, a
TIA Portal tag table or a Node-RED flow (``TagTable.from_telegraf``, ``from_kepware``,
``from_tia``, ``from_node_red``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bifrost.cli import output
from bifrost.exceptions import ConfigurationError

if TYPE_CHECKING:
    from bifrost.tags import TagTable

__all__ = ["app", "check", "convert", "load_table"]

app = typer.Typer(
    help="Validate and convert tag tables (CSV, YAML; imports from other tools).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_DUMMY_URLS = {
    "modbus": "modbus://127.0.0.1:502",
    "s7": "s7://127.0.0.1:102",
    "opcua": "opc.tcp://127.0.0.1:4840",
}


class Source(StrEnum):
    """Other tools' tag exports ``--from`` reads."""

    telegraf = "telegraf"
    kepware = "kepware"
    tia = "tia"
    node_red = "node-red"


def load_table(path: Path, source: Source | None = None) -> TagTable:
    """A bifrost tag table (CSV/YAML), or another tool's export through its importer."""
    from bifrost.tags import TagTable

    if source is None:
        return TagTable.load(path)
    method = f"from_{source.value.replace('-', '_')}"
    importer = getattr(TagTable, method, None)
    if importer is None:
        raise ConfigurationError(
            f"this bifrost has no TagTable.{method} importer for --from {source.value}; "
            "update bifrost-core, or export the tags as CSV"
        )
    table: TagTable = importer(path)
    return table


def _check_addresses(table: TagTable, protocol: str) -> None:
    from bifrost.protocols.registry import driver_for_url

    driver = driver_for_url(_DUMMY_URLS[protocol])
    for tag in table:  # one at a time, so that the error names the first bad tag
        driver.compile_read([tag])


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="Tag table: .csv, .yaml or .yml.")],
    protocol: Annotated[
        str | None,
        typer.Option(
            "--protocol", "-p", help="Check addresses too: modbus, s7 or opcua.", show_default=False
        ),
    ] = None,
    source: Annotated[
        Source | None,
        typer.Option("--from", help="Read another tool's export.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tags as JSON.")] = False,
) -> None:
    """Check a tag table: fields, names, limits and (with --protocol) every address."""
    table = load_table(path, source)
    if protocol is not None:
        if protocol not in _DUMMY_URLS:
            raise ConfigurationError(f"--protocol {protocol!r}: use modbus, s7 or opcua")
        _check_addresses(table, protocol)
    if as_json:
        output.emit_records(_rows(table), "json")
        return
    checked = f", addresses checked for {protocol}" if protocol else ""
    output.out.print(f"{path}: {len(table)} tags, valid{checked}", markup=False)


@app.command()
def convert(
    source_path: Annotated[Path, typer.Argument(help="The tag table or export to read.")],
    target: Annotated[Path, typer.Argument(help="The table to write: .csv or .yaml.")],
    source: Annotated[
        Source | None,
        typer.Option("--from", help="Read another tool's export.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace TARGET if it exists.")] = False,
) -> None:
    """Convert a tag table between CSV and YAML, or import another tool's export."""
    table = load_table(source_path, source)
    if target.exists() and not force:
        raise ConfigurationError(f"{target} exists; pass --force to replace it")
    suffix = target.suffix.lower()
    if suffix == ".csv":
        table.to_csv(target)
    elif suffix in (".yaml", ".yml"):
        table.to_yaml(target)
    else:
        raise ConfigurationError(f"{target}: write .csv, .yaml or .yml")
    output.out.print(f"{len(table)} tags: {source_path} -> {target}", markup=False)


def _rows(table: TagTable) -> list[dict[str, Any]]:
    return table.to_records()
