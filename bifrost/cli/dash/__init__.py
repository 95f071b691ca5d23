"""``bifrost dash``: a live terminal dashboard of one connection, built with Textual.

A tag list with search, the selected tags' live values coloured by quality, their trend,
a recording to a file on ``r`` and, on writable connections, a write dialog on ``w``.
Textual loads only when :func:`run` is called, so ``bifrost --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import bifrost as bf

__all__ = ["run"]


def run(
    connection: bf.Connection,
    tags: list[str] | None,
    *,
    writable: bool = False,
    record_dir: Path | None = None,
) -> int:
    """Run the dashboard on ``connection`` until ``q``; returns the exit code.

    Parameters
    ----------
    connection
        An open connection; it is closed when the dashboard ends, however it ends.
    tags
        Tags to select at start (names, or raw addresses added to the list); None selects
        the first few of the connection's tag table.
    writable
        Offer the write dialog (``w``). It also needs a connection opened with
        ``writable=True``; every write shows old → new and waits for confirmation.
    record_dir
        Folder of the recordings started with ``r`` (default: the working directory).

    Raises
    ------
    bifrost.AddressError
        A tag that does not resolve, before the screen changes.
    bifrost.MissingDependency
        textual or textual-plot is not installed (they come with bifrost-cli).
    """
    try:
        from bifrost._extras import require

        # A missing library is an error naming the install command, not an ImportError.
        require("textual", "The bifrost dashboard")
        require("textual_plot", "The bifrost dashboard")
        from bifrost.cli.dash.app import DashApp

        app = DashApp(connection, tags, writable=writable, record_dir=record_dir)
        app.run()
    finally:
        connection.close()
    return app.return_code or 0
