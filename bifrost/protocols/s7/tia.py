"""Tag tables from TIA Portal exports (kept for existing code: use ``TagTable.from_tia``)."""

from __future__ import annotations

import os

from bifrost.tags import TagTable

__all__ = ["tags_from_tia"]


def tags_from_tia(path: str | os.PathLike[str]) -> TagTable:
    """Import a TIA Portal export; the same as ``TagTable.from_tia(path, skip_unsupported=True)``.

    Each member's or tag's absolute address becomes an S7 address, e.g. ``DB1.DBD4:REAL``;
    members of types bifrost does not decode are left out (with a warning).

    Raises
    ------
    ConfigurationError
        If the file cannot be read or holds no usable tags.
    """
    return TagTable.from_tia(path, skip_unsupported=True)
