"""Output folders of the commands; input expansion lives in :mod:`cracksam.data.inputs`."""

from __future__ import annotations

import os
from pathlib import Path

from cracksam.errors import ConfigError

# Input expansion is cracksam.data.inputs' (it imports OpenCV and numpy): importing it here would
# make registering the commands, which all import this module, pay for them.
__all__ = ["check_output_dir", "output_dir"]


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
