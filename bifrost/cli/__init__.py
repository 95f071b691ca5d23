"""The ``bifrost`` command line (the bifrost-cli distribution, which installs the script).

One module per verb or small group of verbs under :mod:`bifrost.cli.commands`; the Typer
app, the exit codes and the plugins in :mod:`bifrost.cli.app`; output formats in
:mod:`bifrost.cli.output`; connection profiles in :mod:`bifrost.cli.profiles`; the
Textual dashboard in :mod:`bifrost.cli.dash`.

Other distributions add subcommands through the ``bifrost.cli`` entry-point group: each
entry point names a ``typer.Typer`` or a ``main(argv) -> int`` function, which becomes
the subcommand of the entry point's name and gets the rest of the command line
(``--help`` included). It is imported only when its subcommand runs::

    [project.entry-points."bifrost.cli"]
    gateway = "bifrost.cloud.gateway:main"

Only typer and rich load before a command runs (``bifrost --help`` stays fast); bifrost
loads pandas when a command first connects.
"""

from __future__ import annotations

from importlib.util import find_spec

from bifrost._extras import require

require("typer", "The bifrost command line")
if find_spec("rich") is None:  # rich itself loads when a command prints, not for --help
    require("rich", "The bifrost command line")  # raises, naming what to install

from bifrost.cli.app import PLUGIN_GROUP, add_plugins, app, main  # noqa: E402

__all__ = ["PLUGIN_GROUP", "add_plugins", "app", "main"]
