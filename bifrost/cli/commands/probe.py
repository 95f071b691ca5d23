"""``bifrost probe``: raw Modbus registers decoded under every type and byte order.

The terminal twin of the notebook's DecodeProbe (same code,
:mod:`bifrost.protocols.modbus.probe`): reads ``--count`` registers from an address plus
one on each side, decodes a value starting at every register under every type and
order, and with ``--expect VALUE`` lists the decodings that give it, exact ones first.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bifrost.cli import output
from bifrost.cli.target import AsCsv, AsJson, Options, TagFile, TargetArg, connect, resolve
from bifrost.exceptions import ConfigurationError

__all__ = ["probe"]


def probe(
    target: TargetArg,
    address: Annotated[str, typer.Argument(help="Where to look: hr:100, ir:0, 40101.")],
    count: Annotated[int, typer.Option("--count", "-n", help="Registers to decode (1-120).")] = 4,
    expect: Annotated[
        str | None, typer.Option("--expect", "-e", help="The value the HMI shows.")
    ] = None,
    tolerance: Annotated[
        str, typer.Option("--tolerance", help="How close is a match: 0.5% or 0.01.")
    ] = "0.5%",
    implausible: Annotated[
        bool, typer.Option("--all", help="Also show implausible decodings.")
    ] = False,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Decode raw registers under every type and byte order; --expect finds a value."""
    from bifrost.protocols.modbus import probe as core

    fmt = output.choose_format(as_json, as_csv)
    tol = core.Tolerance.parse(tolerance)
    wanted = _expected(expect)
    where = core.window(address, count)
    with connect(resolve(target, tag_file, option)) as plc:
        if plc.protocol != "modbus":
            raise ConfigurationError(f"probe reads Modbus registers; {plc.url} is {plc.protocol}")
        registers = core.read_window(plc, where.table, where.first, where.end)
    matrix, valid = core.decode_window(registers, where.table, where.first)
    matches: dict[str, Any] = {}
    if wanted is not None:
        sightings = [(0.0, wanted, core.typed_decimals(str(expect)))]
        for m in core.rank_matches([(0.0, matrix)], sightings, tol, valid):
            matches.setdefault(m.address, m)
    rows = []
    for key, row in matrix.iterrows():
        name = str(key)
        if name.startswith("ascii"):
            continue
        dtype, order = name.split()
        for j, (column, value) in enumerate(row.items()):
            if value is None:
                continue
            decoded = core.probe_address(str(column), dtype, order)
            found = [m for a, m in matches.items() if a == decoded]
            plausible = bool(valid[name][j])
            if not (plausible or implausible or found):
                continue
            rows.append(
                {
                    "address": decoded,
                    "type": dtype,
                    "order": order,
                    "value": value,
                    "plausible": plausible,
                    "match": _match(found),
                }
            )
    if wanted is not None:
        rows.sort(key=lambda r: _rank(r["match"]))
    if fmt != "table":
        output.emit_records(rows, fmt)
        return
    output.emit_records(rows, fmt, f"{plc.url} {where.table}:{where.first}-{where.end - 1}")
    if wanted is not None:
        best = [r["address"] for r in rows if r["match"]]
        output.out.print(
            f"{len(best)} decodings give {expect} ({tol}): {', '.join(best[:5])}"
            if best
            else f"no decoding gives {expect} ({tol}); try --count, another table, or --all",
            markup=False,
        )


def _expected(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigurationError(f"--expect {text!r} is no number") from None


def _rank(match: str | None) -> int:
    if match is None:
        return 2
    return 0 if match.startswith("exact") else 1


def _match(found: list[Any]) -> str | None:
    if not found:
        return None
    m = found[0]
    scale = f" x{m.scale:g}" if m.scale != 1.0 else ""
    return ("exact" if m.exact else "close") + scale
