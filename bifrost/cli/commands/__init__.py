"""The verbs of ``bifrost``, one module per verb or small group of verbs.

Each module imports only typer and the CLI's light modules at the top; bifrost's heavy
parts (pandas, drivers) load inside the command when it runs.
"""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add every built-in verb to ``app`` (in the order ``bifrost --help`` lists them)."""
    from bifrost.cli.commands import (
        browse,
        dash,
        plant,
        probe,
        read,
        record,
        recordings,
        scan,
        tags,
        watch,
        write,
    )
    from bifrost.cli.commands import profiles as profiles_verb

    app.command()(read.read)
    app.command()(write.write)
    app.command()(browse.browse)
    app.command()(read.info)
    app.command()(read.explain)
    app.command()(record.record)
    app.command()(watch.watch)
    app.command()(probe.probe)
    app.command()(scan.scan)
    app.command()(dash.dash)
    app.command()(plant.sim)
    app.command()(plant.demo)
    app.command()(recordings.convert)
    app.command()(recordings.publish)
    app.add_typer(tags.app, name="tags")
    app.add_typer(profiles_verb.app, name="profiles")
