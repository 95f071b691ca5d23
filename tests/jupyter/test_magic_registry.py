"""The command registry the %bifrost magics are declared with, on a toy magic."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from bifrost.jupyter.magics.registry import CommandRegistry, arg


@pytest.fixture
def toy():
    commands = CommandRegistry("toy")

    class Toy:
        @commands.command(
            arg("name", help="who to greet"),
            arg("--loud", "-l", action="store_true", help="shout"),
        )
        def _greet(self, args):
            """Greet NAME.

            Politely,   unless --loud.
            """
            return args.name.upper() if args.loud else args.name

        @commands.command(arg("var", help="where to put the body"), cell=True)
        def _keep(self, args, body):
            """Keep the cell's body."""
            return args.var, body

    return commands, Toy()


def test_the_declaration_gives_parser_handler_help_and_overview(toy):
    commands, instance = toy
    assert [c.name for c in commands] == ["greet", "keep"]
    greet = commands["greet"]
    assert greet.invocation == "%toy greet"
    assert greet.description == "Greet NAME. Politely, unless --loud."
    assert greet.handler(instance, greet.parse("world --loud")) == "WORLD"
    text = greet.help()
    # The usage line comes first, without the "::" of IPython's reST formatting.
    assert text.splitlines()[0] == "%toy greet [--loud] name"
    assert "who to greet" in text
    assert "--loud, -l" in text
    assert greet.description in text
    keep = commands["keep"]
    assert keep.invocation == "%%toy keep"
    assert "%%toy keep var" in keep.help()
    assert keep.handler(instance, keep.parse("x"), "body") == ("x", "body")
    # One column for the invocations, whatever their prefix.
    assert commands.overview() == [
        "  %toy greet  Greet NAME. Politely, unless --loud.",
        "  %%toy keep  Keep the cell's body.",
    ]


def test_unknown_command_lists_the_line_commands(toy):
    commands, _ = toy
    error = commands.unknown("gret")
    assert isinstance(error, UsageError)
    assert str(error) == "unknown command 'gret'; commands: greet"
    assert "gret" not in commands
    assert commands.get("gret") is None


def test_bad_arguments_are_usage_errors_not_exits(toy):
    commands, _ = toy
    with pytest.raises(UsageError, match="name"):
        commands["greet"].parse("")


def test_a_command_is_declared_once_and_documented():
    commands = CommandRegistry("toy")

    def _twice(self, args):
        """Do it."""

    commands.command()(_twice)
    with pytest.raises(ValueError, match="declared twice"):
        commands.command()(_twice)

    def _silent(self, args):
        pass

    with pytest.raises(ValueError, match="needs a docstring"):
        commands.command()(_silent)
