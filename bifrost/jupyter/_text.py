"""Small text helpers shared by the magics and the widgets (no widget imports)."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, word: str, many: str | None = None) -> str:
    """``plural(1, "tag")`` -> ``"1 tag"``, ``plural(1500, "tag")`` -> ``"1,500 tags"``."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"
