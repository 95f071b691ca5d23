"""What every device command shares: URL or ``@profile``, tag file, options, completion.

A command names its device as a URL or ``@name`` (a profile, see
:mod:`bifrost.cli.profiles`); ``--tags FILE`` and ``-O KEY=VALUE`` add to (and override)
what the profile says. Nothing here imports pandas: bifrost's heavy parts load when a
command connects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bifrost.exceptions import ConfigurationError

if TYPE_CHECKING:
    import bifrost as bf

__all__ = [
    "AsCsv",
    "AsJson",
    "Options",
    "TagArgs",
    "TagFile",
    "Target",
    "TargetArg",
    "complete_tags",
    "complete_target",
    "connect",
    "parse_options",
    "parse_value",
    "resolve",
    "span",
]


def complete_target(incomplete: str) -> list[str]:
    """``@name`` of every profile (shell completion)."""
    from bifrost.cli import profiles

    return [f"@{n}" for n in profiles.names() if f"@{n}".startswith(incomplete)]


def complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    """Tag names from ``--tags FILE`` or the profile's tag table (shell completion)."""
    try:
        source = ctx.params.get("tag_file")
        target = ctx.params.get("target")
        if source is None and isinstance(target, str) and target.startswith("@"):
            from bifrost.cli import profiles

            source = profiles.load().get(target[1:]).tags
        if source is None:
            return []
        from bifrost.tags import TagTable

        table = TagTable.load(source)
    except Exception:  # completion never fails the shell; it just offers nothing
        return []
    return [n for n in table.names if n.startswith(incomplete)]


TargetArg = Annotated[
    str,
    typer.Argument(
        help="Device URL (modbus://HOST:PORT, s7://HOST, opc.tcp://HOST:PORT/...) or @PROFILE.",
        metavar="URL",
        autocompletion=complete_target,
    ),
]
TagArgs = Annotated[
    list[str] | None,
    typer.Argument(
        help="Tag names or addresses (default: every tag of the tag table).",
        metavar="TAGS",
        autocompletion=complete_tags,
        show_default=False,
    ),
]
TagFile = Annotated[
    Path | None, typer.Option("--tags", "-t", help="Tag table (CSV or YAML).", show_default=False)
]
Options = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-O",
        help="Connection option KEY=VALUE, repeatable (-O unit=2, -O timeout=5).",
        show_default=False,
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="JSON: one object per row, UTC ISO-8601 times.")
]
AsCsv = Annotated[bool, typer.Option("--csv", help="CSV: a header, then one line per row.")]


def parse_value(text: str) -> Any:
    """Numbers and booleans as the connection expects them; everything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def span(text: str, what: str) -> float:
    """A duration as typed: ``100ms``, ``1s``, ``2min``, or a bare number of seconds."""
    from bifrost.recording.timing import seconds

    try:
        return seconds(float(text), what)
    except ValueError:
        return seconds(text, what)


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["unit=2", "timeout=5"]`` -> ``{"unit": 2, "timeout": 5}``."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"option {pair!r} is not KEY=VALUE (e.g. -O unit=2)")
        options[key.strip()] = parse_value(value.strip())
    return options


@dataclass(frozen=True)
class Target:
    """A device as a command names it: URL, options, tag table, writable."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)
    tags: Path | None = None
    writable: bool = False
    profile: str | None = None


def resolve(target: str, tag_file: Path | None = None, pairs: list[str] | None = None) -> Target:
    """Turn ``URL`` or ``@profile`` plus the command's own flags into a :class:`Target`."""
    options = parse_options(pairs)
    if not target.startswith("@"):
        return Target(target, options, tag_file)
    from bifrost.cli import profiles

    profile = profiles.load().get(target[1:])
    return Target(
        profile.url,
        {**profile.connect_options(), **options},
        tag_file or profile.tags,
        profile.writable,
        profile.name,
    )


def connect(target: Target, *, writable: bool = False) -> bf.Connection:
    """Open the connection (read-only unless ``writable``)."""
    import bifrost as bf

    return bf.connect(target.url, tags=target.tags, writable=writable, **target.options)
