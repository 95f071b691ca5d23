"""A progress bar for blocking recordings: tqdm (notebook-aware), or nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["progress_bar"]


@contextlib.contextmanager
def progress_bar(total: int | None, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``update(done)``; shows samples recorded out of ``total``."""
    if not enabled:
        yield lambda done: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="samples", desc="recording", leave=True)
    try:

        def update(done: int) -> None:
            bar.update(done - bar.n)

        yield update
    finally:
        bar.close()
