"""The Typer app: the root callback, the commands, the plugins and the exit-code mapping.

Only typer, rich and bifrost's light modules load before a command runs, so that
``bifrost --help`` stays within its 0.3 s budget; each command imports pandas (through
bifrost) when it connects, and a plugin's module when its subcommand runs.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from typer import Context

from bifrost.cli import errors as exit_codes
from bifrost.cli import output, profiles
from bifrost.cli.commands import register
from bifrost.exceptions import BifrostError

__all__ = ["PLUGIN_GROUP", "add_plugins", "app", "main"]

PLUGIN_GROUP = "bifrost.cli"

app = typer.Typer(
    name="bifrost",
    help="Industrial protocols from the command line: read, write, browse, record, watch.",
    epilog=exit_codes.EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Settings:
    """What the root options set for the run (the one command per process)."""

    debug = bool(os.environ.get("BIFROST_DEBUG"))


def _version(value: bool) -> None:
    if value:
        import bifrost

        print(f"bifrost {bifrost.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    profile_file: Annotated[
        Path | None,
        typer.Option(
            "--profiles",
            envvar="BIFROST_PROFILES",
            help="Profile file (default ~/.config/bifrost/profiles.yaml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Bifrost: Modbus, S7 and OPC UA as easy as a web API."""
    if debug:
        import bifrost

        _Settings.debug = True
        bifrost.debug(True)
    profiles.set_path(profile_file)


def add_plugins(target: typer.Typer = app) -> None:
    """Add the subcommands that installed distributions declare under ``bifrost.cli``.

    Each entry point names a ``typer.Typer`` or a ``main(argv) -> int`` function (an
    argparse tool's), which becomes the subcommand of the entry point's name and gets
    the rest of the command line. It is imported when it runs, not here: a plugin may
    import pandas (the gateway does), and ``bifrost --help`` stays fast.
    """
    from importlib.metadata import entry_points

    taken = {c.name for c in getattr(target, "registered_commands", [])}
    for entry_point in entry_points(group=PLUGIN_GROUP):
        if entry_point.name in taken:
            continue  # a plugin cannot shadow a built-in verb
        distribution = entry_point.dist.name if entry_point.dist is not None else "a plugin"
        _add_main(target, entry_point.name, entry_point.load, f"From {distribution}.")


def _add_main(target: typer.Typer, name: str, load: Any, summary: str) -> None:
    """Add the subcommand ``name``: ``load()`` gives a Typer app or ``main(argv) -> int``."""

    @target.command(
        name=name,
        help=f"{summary} `bifrost {name} --help` for its options.",
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def run(ctx: Context) -> None:
        command = load()
        if isinstance(command, typer.Typer):
            command = typer.main.get_command(command)
            raise typer.Exit(command.main(list(ctx.args), prog_name=f"bifrost {name}"))
        raise typer.Exit(command(list(ctx.args)) or 0)


register(app)


def report(error: BaseException) -> int:
    """Print ``error`` as one or two lines (a traceback with ``--debug``); its exit code."""
    if _Settings.debug:
        traceback.print_exception(error, file=sys.stderr)
    output.errors.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
    hint = exit_codes.hint(error)
    if hint:
        output.errors.print(f"hint: {hint}", markup=False, highlight=False, soft_wrap=True)
    return exit_codes.exit_code(error)


def main() -> None:
    """Entry point of the ``bifrost`` script."""
    try:
        add_plugins()
        app()
    except BifrostError as error:
        sys.exit(report(error))
