"""Turning inputs named by the user (files, folders, glob patterns) into a list of image files.

Below every command that reads images (``predict``, ``stream``, the survey, the deployment
pipeline), so it lives in ``data`` rather than in the command line.
"""

from __future__ import annotations

import glob
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".webp", ".pgm", ".ppm"}


def expand_inputs(patterns: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files named by ``patterns`` (files, folders, globs) and (name, problem) pairs."""
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append((pattern, "folder contains no image files"))
            for p in found:
                add(p)
        elif path.exists():
            add(path)
        elif any(ch in pattern for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
            if not found:
                problems.append((pattern, "no file matches this pattern"))
            for p in found:
                add(p)
        else:
            problems.append((pattern, "file not found"))
    return files, problems


def unique_stem(path: Path, used: set[str]) -> str:
    """``path``'s stem, made unique within one run (``a``, ``a_2``, ...) so outputs never clash."""
    stem, n = path.stem, 2
    while stem in used:
        stem = f"{path.stem}_{n}"
        n += 1
    used.add(stem)
    return stem
