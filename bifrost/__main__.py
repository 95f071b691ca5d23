"""``python -m bifrost`` runs the command line, which is the bifrost-cli distribution."""

import sys

from bifrost.exceptions import MissingDependency

try:
    from bifrost.cli import main
except MissingDependency as exc:  # bifrost-cli (or typer, rich) is not installed
    sys.exit(f"error: {exc}")

main()
