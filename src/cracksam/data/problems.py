"""How dataset problems are reported: all of them at once, in one :class:`DatasetError` that lists
the offending files, so a user fixes a folder in one pass instead of one error per run."""

from __future__ import annotations

from collections.abc import Sequence

from cracksam.errors import DatasetError

MAX_LISTED_PROBLEMS = 20


def raise_problems(header: str, problems: Sequence[str]) -> None:
    """Raise one DatasetError listing at most MAX_LISTED_PROBLEMS problems."""
    if not problems:
        return
    lines = [f"  - {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    raise DatasetError(f"{header} ({count}):\n" + "\n".join(lines))


def shorten(items: Sequence[str], limit: int = 10) -> str:
    """Comma-separated items, cut after ``limit`` with a count of the rest."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... and {len(items) - limit} more" if len(items) > limit else "")
