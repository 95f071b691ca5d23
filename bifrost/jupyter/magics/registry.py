"""A registry of magic subcommands: each one declared once, next to its handler.

A command is a handler decorated with :meth:`CommandRegistry.command`, which takes the
command's arguments (:func:`arg`, the same as ``ArgumentParser.add_argument``); the
handler's docstring is the command's description. Its parser, its ``--help``, its line
in the overview of all commands and the list of commands in the error for an unknown
one all come from that declaration, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

__all__ = ["Arg", "Command", "CommandRegistry", "arg"]

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Arg:
    """The arguments of one ``add_argument`` call, kept until the parser is built."""

    flags: tuple[str, ...]
    options: Mapping[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    """Declare an argument of a command, as ``ArgumentParser.add_argument`` takes it."""
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    """One subcommand of a magic: its name, parser and handler.

    Attributes
    ----------
    name
        The word after the magic, e.g. ``read`` in ``%bifrost read``.
    prefix
        The magic as typed before the name: ``%bifrost``, or ``%%bifrost`` for a cell
        command.
    description
        One line: the handler's docstring with its whitespace collapsed.
    parser
        Parses the rest of the line; raises ``UsageError`` instead of exiting.
    handler
        The function declared with the command, called with the magics instance and
        the parsed arguments (and the cell body for a cell command).
    cell
        Whether the command is a cell magic (``%%``).
    """

    name: str
    prefix: str
    description: str
    parser: MagicArgumentParser
    handler: Callable[..., Any]
    cell: bool

    @property
    def invocation(self) -> str:
        """How the command is typed, e.g. ``%bifrost read``."""
        return f"{self.prefix} {self.name}"

    def help(self) -> str:
        """The command's ``--help`` text, starting with its usage line."""
        text: str = self.parser.format_help()
        # IPython's formatter writes usage as a reST literal block ("::" and an indented
        # line) for the docstrings of %magics; printed, the "::" is noise.
        if text.startswith("::\n"):
            text = text[3:].lstrip("\n").removeprefix("  ")
        return text

    def parse(self, line: str) -> argparse.Namespace:
        """Parse the rest of the magic's line (quoting as in a shell).

        Raises
        ------
        UsageError
            For arguments the command does not take.
        """
        args: argparse.Namespace = self.parser.parse_argstring(line)  # type: ignore[no-untyped-call]
        return args


class CommandRegistry:
    """The subcommands of one magic, in the order they were declared."""

    def __init__(self, magic: str) -> None:
        self.magic = magic
        self._commands: dict[str, Command] = {}

    def command(self, *arguments: Arg, cell: bool = False) -> Callable[[Handler], Handler]:
        """Declare the decorated function as a command, named after it without underscores.

        Parameters
        ----------
        *arguments
            The command's arguments, each from :func:`arg`.
        cell
            Declare a cell magic (``%%magic name``) instead of a line magic.
        """

        def declare(handler: Handler) -> Handler:
            name = handler.__name__.strip("_")
            if name in self._commands:
                raise ValueError(f"command {name!r} of %{self.magic} is declared twice")
            doc = inspect.getdoc(handler)
            if not doc:
                raise ValueError(f"command {name!r} of %{self.magic} needs a docstring")
            description = " ".join(doc.split())
            prefix = f"{'%%' if cell else '%'}{self.magic}"
            # IPython's help formatter writes one "%" before prog itself.
            parser = MagicArgumentParser(  # type: ignore[no-untyped-call]
                prog=f"{prefix[1:]} {name}", description=description
            )
            for argument in arguments:
                parser.add_argument(*argument.flags, **argument.options)
            self._commands[name] = Command(name, prefix, description, parser, handler, cell)
            return handler

        return declare

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    def __len__(self) -> int:
        return len(self._commands)

    def __contains__(self, name: object) -> bool:
        return name in self._commands

    def __getitem__(self, name: str) -> Command:
        return self._commands[name]

    def get(self, name: str) -> Command | None:
        """The command called ``name``, or None."""
        return self._commands.get(name)

    @property
    def line_commands(self) -> list[str]:
        """The names of the line commands, in declaration order."""
        return [c.name for c in self if not c.cell]

    def unknown(self, name: str) -> UsageError:
        """The error for a command that does not exist, listing those that do."""
        return UsageError(f"unknown command {name!r}; commands: {', '.join(self.line_commands)}")

    def overview(self) -> list[str]:
        """One line per command: how to invoke it and its description, in two columns."""
        width = max((len(c.invocation) for c in self), default=0)
        return [f"  {c.invocation:<{width}}  {c.description}" for c in self]
