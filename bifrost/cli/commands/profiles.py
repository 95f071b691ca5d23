"""``bifrost profiles list|check``: the connection profiles (secrets never shown)."""

from __future__ import annotations

from typing import Annotated

import typer

from bifrost.cli import output
from bifrost.cli import profiles as store
from bifrost.exceptions import BifrostError, ConfigurationError
from bifrost.secrets import redact_url

__all__ = ["app", "check", "list_profiles"]

app = typer.Typer(
    help=(
        "Connection profiles: @NAME wherever a URL goes. The file (~/.config/bifrost/"
        "profiles.yaml, --profiles FILE or BIFROST_PROFILES) maps names to url, tags, "
        "options, writable and secrets (env:NAME, keyring:SERVICE/USER, file:PATH)."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("list")
def list_profiles(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the profiles: name, URL, tag table, writable, secret references."""
    found = store.load()
    rows = [
        {
            "name": f"@{p.name}",
            "url": redact_url(p.url),
            "tags": str(p.tags) if p.tags else "",
            "writable": p.writable,
            "options": ", ".join(f"{k}={v}" for k, v in p.options.items()),
            "secrets": ", ".join(f"{k}={ref}" for k, ref in p.secrets.items()),
            "description": p.description,
        }
        for p in found.profiles.values()
    ]
    output.emit_records(rows, "json" if as_json else "table", str(found.path))


@app.command()
def check(
    connect: Annotated[
        bool, typer.Option("--connect", help="Also connect to each device (and close).")
    ] = False,
) -> None:
    """Check the file, each profile's tag table and secrets (and, with --connect, device)."""
    found = store.load()
    problems = []
    for profile in found.profiles.values():
        try:
            _check(profile, connect)
        except BifrostError as exc:
            problems.append(f"@{profile.name}: {exc}")
    for line in problems:
        output.errors.print(line, markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise ConfigurationError(
            f"{len(problems)} of {len(found.profiles)} profiles in {found.path} have problems"
        )
    count = len(found.profiles)
    noun = "profile" if count == 1 else "profiles"
    output.out.print(f"{found.path}: {count} {noun}, all valid", markup=False)


def _check(profile: store.Profile, connect: bool) -> None:
    options = profile.connect_options()  # every secret is there (never printed)
    if profile.tags is not None:
        from bifrost.tags import TagTable

        TagTable.load(profile.tags)
    if connect:
        import bifrost as bf

        with bf.connect(profile.url, tags=profile.tags, **options):
            pass
