"""``bifrost browse``: a device's address space (OPC UA) or its tag table, as a tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from bifrost.cli import output
from bifrost.cli.target import AsCsv, AsJson, Options, TagFile, TargetArg, connect, resolve

if TYPE_CHECKING:
    from rich.tree import Tree

__all__ = ["browse", "tree"]

_SHOWN = ("address", "dtype", "data_type", "unit", "writable", "description")


def browse(
    target: TargetArg,
    path: Annotated[
        str | None, typer.Argument(help="OPC UA node to start from (browse path or NodeId).")
    ] = None,
    depth: Annotated[int, typer.Option("--depth", "-d", help="Levels to descend (OPC UA).")] = 1,
    flat: Annotated[bool, typer.Option("--flat", help="A table instead of the tree.")] = False,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """List what a device offers: OPC UA nodes, or the tag table (Modbus, S7)."""
    fmt = output.choose_format(as_json, as_csv)
    with connect(resolve(target, tag_file, option)) as plc:
        frame = plc.browse(path, depth)
    if fmt != "table" or flat:
        output.emit_frame(frame, fmt)
        return
    output.out.print(tree(output.records(frame), str(plc.url)))


def tree(rows: list[dict[str, Any]], title: str) -> Tree:
    """Rows as a tree: OPC UA rows by browse path, tag-table rows by dotted name."""
    from rich.tree import Tree

    root = Tree(title, guide_style="" if output.is_plain() else "dim")
    branches: dict[tuple[str, ...], Tree] = {(): root}
    for row in rows:
        path = row.get("browse_path")
        if isinstance(path, str) and path:
            parts = tuple(p.split(":", 1)[-1] for p in path.strip("/").split("/"))
        else:
            parts = tuple(str(row.get("name", "")).split("."))
        for i in range(1, len(parts)):
            key = parts[:i]
            if key not in branches:
                branches[key] = branches[parts[: i - 1]].add(parts[i - 1])
        facts = "  ".join(f"{k}={row[k]}" for k in _SHOWN if row.get(k) not in (None, "", False))
        leaf = f"{parts[-1]}  {facts}" if facts else parts[-1]
        node = branches.get(parts)
        if node is None:
            branches[parts] = branches[parts[:-1]].add(leaf)
        else:  # a node listed after its children (OPC UA depth order)
            node.label = leaf
    return root
