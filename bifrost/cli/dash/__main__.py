"""``python -m bifrost.cli.dash URL [TAGS...]``: the dashboard without the Typer app."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import bifrost as bf
from bifrost.cli.dash import run


def main(argv: Sequence[str] | None = None) -> int:
    """Connect to ``URL`` and run the dashboard; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bifrost.cli.dash", description=__doc__)
    parser.add_argument("url", help="device URL, e.g. modbus://127.0.0.1:5020")
    parser.add_argument("tags", nargs="*", help="tags to select at start")
    parser.add_argument("--tags", dest="tag_file", type=Path, help="tag table (CSV or YAML)")
    parser.add_argument("--writable", action="store_true", help="offer the write dialog")
    parser.add_argument("--record-dir", type=Path, help="folder for recordings")
    args = parser.parse_args(argv)
    try:
        connection = bf.connect(args.url, tags=args.tag_file, writable=args.writable)
        return run(
            connection, args.tags or None, writable=args.writable, record_dir=args.record_dir
        )
    except bf.BifrostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
