"""A preflight check of an S7 connection: whether every data block the tags use reads.

Reading a new PLC usually fails for one of a few settings in TIA Portal (PUT/GET access
off, optimized block access on a data block, a protection level). :func:`preflight` reads
the tags once and answers per data block (or M/I/Q area): readable, or what the CPU said
and what to change, naming the block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from bifrost.exceptions import BifrostError, ConfigurationError
from bifrost.protocols.s7.errors import diagnose
from bifrost.protocols.s7.plan import resolve

__all__ = ["preflight"]


def preflight(plc: Any, tags: Sequence[Any] | None = None) -> pd.DataFrame:
    """One row per data block or area: ``block``, ``tags``, ``ok``, ``code``, ``problem``, ``fix``.

    Parameters
    ----------
    plc
        An open S7 :class:`~bifrost.Connection`.
    tags
        What to check; by default the connection's tag table.
    """
    if plc.protocol != "s7":
        raise ConfigurationError(f"preflight checks S7 connections; {plc.url} is {plc.protocol}")
    resolved = plc.resolve(list(tags) if tags is not None else plc.tags.names)
    blocks: dict[tuple[str, int], list[Any]] = {}
    for tag in resolved:
        address = resolve(tag)
        blocks.setdefault((address.area, address.db if address.area == "DB" else 0), []).append(tag)
    try:
        result = plc.read_result(resolved)
        errors = list(result.errors)
    except BifrostError as exc:  # the whole read failed: every block shares the problem
        errors = [exc]
        failed_all = True
    else:
        failed_all = False
    rows = []
    for (area, db), members in blocks.items():
        names = {tag.name for tag in members}
        block = f"DB{db}" if area == "DB" else area
        problem = next(
            (e for e in errors if failed_all or names & set(getattr(e, "tags", ()))), None
        )
        code = getattr(problem, "code", None) if problem is not None else None
        rows.append(
            {
                "block": block,
                "tags": len(members),
                "ok": problem is None,
                "code": "" if code is None else f"0x{code:02X}",
                "problem": "" if problem is None else str(problem),
                "fix": ""
                if problem is None
                else diagnose(code, area, db if area == "DB" else None),
            }
        )
    return pd.DataFrame(rows, columns=["block", "tags", "ok", "code", "problem", "fix"])
