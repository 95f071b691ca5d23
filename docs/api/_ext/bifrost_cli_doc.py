"""``.. bifrost-cli::``: the reference of the ``bifrost`` command, from its Typer app.

The directive walks the Click command tree that Typer builds (with the subcommands that
installed distributions add through the ``bifrost.cli`` entry points), so the page always
matches the code and the CLI's help strings are the one source of its text. It does not
care whether the CLI is one module or a package: it needs ``bifrost.cli.app`` and,
optionally, ``bifrost.cli.add_plugins``. Without the CLI's extra (typer, rich) the page
says so instead of failing the build.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

UNDERLINES = "=-~^\"'"


def _root_command() -> Any:
    import typer.main

    from bifrost import cli

    add_plugins = getattr(cli, "add_plugins", None)
    # A second build in the same process must not register the plugins twice.
    if add_plugins is not None and not getattr(cli.app, "_bifrost_docs_plugins", False):
        add_plugins()
        cli.app._bifrost_docs_plugins = True
    return typer.main.get_command(cli.app)


def _literal(text: str) -> str:
    return "``" + text.replace("`", "'") + "``" if text else ""


def _help(text: str | None) -> list[str]:
    # Click's help keeps the docstring's layout; \b marks paragraphs that must not be
    # rewrapped, which means nothing here.
    return textwrap.dedent(text or "").replace("\b", "").strip().splitlines()


# Typer may vendor its own Click (typer._click), so commands, groups and parameters are
# told apart by what they have, not by Click's classes.
def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _param_lines(param: Any) -> list[str]:
    if _is_argument(param):
        name = (getattr(param, "metavar", None) or param.name or "").upper()
        kind = "argument" + ("" if param.required else ", optional")
    else:
        name = ", ".join([*param.opts, *param.secondary_opts])
        kind = "option"
        if getattr(param, "is_flag", False):
            kind = "flag"
    help_text = " ".join(_help(getattr(param, "help", None))) or "(no help text)"
    extra = [kind]
    default = getattr(param, "default", None)
    shows_default = getattr(param, "show_default", True) is not False
    if default not in (None, (), [], False) and not callable(default) and shows_default:
        extra.append(f"default {_literal(str(default))}")
    if param.required and not _is_argument(param):
        extra.append("required")
    return [f"{_literal(name)}", f"   {help_text} ({'; '.join(extra)})", ""]


def _command_lines(command: Any, path: list[str], depth: int) -> list[str]:
    title = " ".join(path)
    label = "-".join(path[1:]) or "bifrost"
    lines = [f".. _cli-{label}:", "", title, UNDERLINES[depth] * len(title), ""]
    ctx = command.context_class(command, info_name=path[-1])
    pieces = command.collect_usage_pieces(ctx)
    pieces = [re.sub(r"\{(\w+)\}", lambda m: m[1].upper(), piece) for piece in pieces]
    usage = " ".join([*path, *pieces])
    lines += ["::", "", f"   {usage}", ""]
    lines += [*_help(command.help), ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        lines += [*[line for p in params for line in _param_lines(p)]]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _command_lines(sub, [*path, name], depth + 1)
    return lines


class BifrostCli(SphinxDirective):
    """Insert the command reference, one section per command."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """Build the sections, or a warning box when the CLI is not installed."""
        try:
            root = _root_command()
        except ImportError as exc:
            note = nodes.warning()
            note += nodes.paragraph(
                text=(
                    "The command reference could not be generated: the CLI is not "
                    f"installed in the environment that built these pages ({exc}). "
                    "Install it with: pip install bifrost-cli"
                )
            )
            return [note]
        lines = _command_lines(root, ["bifrost"], 1)
        container = nodes.section()
        nested_parse_with_titles(self.state, StringList(lines, source="bifrost.cli"), container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive."""
    app.add_directive("bifrost-cli", BifrostCli)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
