"""Turning command-line inputs (files, folders, glob patterns) into a list of files."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from cracksam.errors import ConfigError

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


def output_dir(path: Path, option: str = "--out") -> Path:
    """``path`` as a folder for outputs, created if needed; a clear error if it cannot be."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create the folder ({exc.strerror or exc})") from None
    return path


def check_output_dir(path: Path, option: str = "--out") -> Path:
    """Check that ``path`` can become the output folder, without creating it: commands that only
    learn late whether their inputs are good (datasets read by the run itself) leave no empty
    folder behind when they refuse; the folder appears with the first file written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} exists and is not a folder")
    existing = next((p for p in (path, *path.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"{option} {path}: {existing} is not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot create the folder ({existing} is not writable)")
    return path
