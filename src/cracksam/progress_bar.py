"""The package's one progress bar (rich), for every command that shows one.

Columns: what is being done, the bar, done/total, and the time left -- or, for a stream of unknown
length (``rate``), a ``rate`` field of the task and the time elapsed instead.  The bar is transient
(it leaves no line behind) and draws nothing when ``enabled`` is false (``--no-progress``, ``--json``,
a log file): the callers keep calling ``add_task``/``advance``/``update`` either way.

rich is imported when a bar is made, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

__all__ = ["progress_bar"]


def progress_bar(console: Console | None = None, *, enabled: bool = True, rate: bool = False) -> Progress:
    """A transient rich ``Progress`` on ``console`` (rich's default console, stdout, when None),
    drawing nothing unless ``enabled``; with ``rate``, tasks carry a ``rate`` field (text) shown
    before the time elapsed, instead of the time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    last: tuple[ProgressColumn, ...] = (
        (TextColumn("{task.fields[rate]}"), TimeElapsedColumn()) if rate else (TimeRemainingColumn(),)
    )
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *last,
                    console=console, disable=not enabled, transient=True)
