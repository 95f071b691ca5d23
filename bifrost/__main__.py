"""``python -m bifrost`` runs the command line."""

from bifrost.cli import main

main()
