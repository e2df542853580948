"""What keeps the runtime cache (:mod:`cracksam.deployment.runtime_cache`) from lying or blocking.

Every file an entry holds gets a SHA-256 in its ``manifest.json`` when the entry is written, and the
manifest carries a SHA-256 of its own content; before a cached export is opened, its files (an
``.xml`` with its ``.bin``) are checked against those sums, so the parity figure printed is the one
measured on the very bytes that run.  A manifest that cannot be read, has the wrong shape or fails
its own sum, and a file that fails its sum, are reported as one line (``problem`` strings here) and
the caller re-exports or runs PyTorch.  Temporary folders left by an interrupted export
(``.<key>.<random>`` under the cache root) are removed once they are an hour old.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cracksam._files import sha256_file
from cracksam.errors import CrackSAMWarning

MANIFEST = "manifest.json"
SUMS = "sha256"  # manifest key: {file name: hex SHA-256} of every file of the entry
SELF_SUM = "manifest_sha256"  # manifest key: SHA-256 of the rest of the manifest
STALE_SECONDS = 3600.0
# tempfile.mkdtemp(prefix=".<key>.") (8 random characters) and swap_in's trash (8 hex digits).
_TEMP = re.compile(r"^\..+-[0-9a-f]{16}\.[a-z0-9_]{8}$")
_CANDIDATE = {"name": str, "runtime": str, "precision": str, "file": str, "passed": bool}


def warn(message: str) -> None:
    """One ``warning: ...`` line in the CLI (:class:`CrackSAMWarning`), a log record in the service."""
    warnings.warn(message, CrackSAMWarning, stacklevel=3)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``exc`` as one short line (OpenVINO's messages span several, the useful part last)."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, OSError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else "..." + text[-limit:]


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def file_sums(folder: Path) -> dict[str, str]:
    """``{name: SHA-256}`` of the files in ``folder`` (not the manifest, not hidden temp files)."""
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")}


def write_cache_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """``manifest`` with its own SHA-256, to ``folder/manifest.json``.  ``folder`` is the temporary
    folder of a new entry, renamed into place whole, so this write needs no atomicity of its own."""
    body = {k: v for k, v in manifest.items() if k != SELF_SUM}
    (folder / MANIFEST).write_text(json.dumps({**body, SELF_SUM: _digest(body)}, indent=2) + "\n")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "/" not in value and "\\" not in value \
        and not value.startswith(".")


def _shape_problem(data: Any) -> str | None:
    """Why ``data`` (a parsed manifest) cannot be trusted, or None."""
    if not isinstance(data, dict):
        return f"is a JSON {type(data).__name__}, not an object"
    body = {k: v for k, v in data.items() if k != SELF_SUM}
    if SELF_SUM not in data:
        return "has no checksum (written by an older cracksam?)"
    if data[SELF_SUM] != _digest(body):
        return "does not match its own checksum"
    sums, candidates = data.get(SUMS), data.get("candidates")
    if not isinstance(sums, dict) or not all(_plain_name(k) and isinstance(v, str) for k, v in sums.items()):
        return "has no valid file checksums"
    if not isinstance(candidates, list) or not isinstance(data.get("fastest"), str) \
            or not _number(data.get("torch_ms_per_image")):
        return "lacks its candidates, fastest or torch_ms_per_image"
    for c in candidates:
        if not isinstance(c, dict) or not all(isinstance(c.get(k), t) for k, t in _CANDIDATE.items()) \
                or not _plain_name(c["file"]) or not _number(c.get("mask_iou")) or not _number(c.get("min_iou")) \
                or (c["passed"] and not _number(c.get("ms_per_image"))):
            return "has a malformed candidate"
    return None


def read_cache_manifest(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(manifest, None)`` for a sound entry, ``(None, None)`` when there is none, ``(None, why)``
    for a damaged one (unreadable, not JSON, the wrong shape, failing its own checksum)."""
    if not os.path.lexists(folder):
        return None, None
    try:
        data = json.loads((folder / MANIFEST).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None, f"no {MANIFEST}"
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8 or JSON
        return None, f"unreadable {MANIFEST} ({one_line(exc, 120)})"
    problem = _shape_problem(data)
    return (None, f"{MANIFEST} {problem}") if problem else (data, None)


def entry_files(file: str) -> list[str]:
    """The files a cached export is opened from: an OpenVINO ``.xml`` needs its ``.bin``."""
    return [file, str(Path(file).with_suffix(".bin"))] if file.endswith(".xml") else [file]


def verify_files(folder: Path, file: str, sums: dict[str, str]) -> str | None:
    """Why the export ``file`` of the entry ``folder`` must not be opened (a file without a sum,
    unreadable or not matching it), or None when every file matches its SHA-256."""
    for name in entry_files(file):
        expected = sums.get(name)
        if expected is None:
            return f"{name} has no checksum"
        try:
            actual = sha256_file(folder / name)
        except OSError as exc:
            return f"cannot read {name} ({one_line(exc, 120)})"
        if actual != expected:
            return f"{name} does not match its checksum (damaged since it was exported)"
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass


def remove_stale_temps(root: Path, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove the temporary folders of exports that never finished (killed, or on a full disk)
    that are older than ``max_age`` seconds; a younger one may be another process's build."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        try:
            if not _TEMP.match(entry.name) or not entry.is_dir(follow_symlinks=False) \
                    or now - entry.stat(follow_symlinks=False).st_mtime < max_age:
                continue
        except OSError:
            continue
        _remove(Path(entry.path))
        removed.append(Path(entry.path))
    return removed


def swap_in(tmp: Path, folder: Path, replace: bool) -> None:
    """Rename the finished entry ``tmp`` to ``folder``.  When ``folder`` exists: with ``replace``
    (it is damaged) it is moved aside, ``tmp`` renamed in and the old one removed; without, another
    process finished first and its entry is kept."""
    try:
        os.rename(tmp, folder)
        return
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise
        if not replace:
            return
    trash = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        pass
    try:
        os.rename(tmp, folder)
    except OSError as exc:  # another process's new entry got there first: keep it
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    finally:
        _remove(trash)


def build_in_place(folder: Path, build: Callable[[Path], Any], replace: bool) -> None:
    """Run ``build`` on a temporary folder beside ``folder`` and rename it into place, so a
    concurrent process sees a whole entry or none; ``replace``: swap out a damaged one.  Temporary
    folders of exports that never finished are cleared first; this one goes whatever happens."""
    root = folder.parent
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        build(tmp)
        swap_in(tmp, folder, replace)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["MANIFEST", "STALE_SECONDS", "SUMS", "build_in_place", "entry_files", "file_sums", "one_line",
           "read_cache_manifest", "remove_stale_temps", "swap_in", "verify_files", "warn", "write_cache_manifest"]
