"""An INT8 export kept inside a model folder, so ``--runtime auto`` can run it.

INT8 that keeps the masks needs calibration on real photos and a parity check on others
(``cracksam export --targets openvino-int8 --calib ... --samples ...``); the runtime cache, which
exports on first use with nothing but synthetic images, cannot make one.  ``export --attach``
therefore copies an INT8 IR that passed its parity check into the model folder, as ``int8/``:

* ``int8/model_int8.xml`` + ``.bin``: the IR;
* ``int8/int8.json``: the SHA-256 of the model's own files (the float weights it was made from),
  of the IR's two files, and the parity report on the photos it was checked on.

The runtime cache offers it as its ``openvino-int8`` candidate only while every checksum matches:
retrained or replaced weights leave a stale IR, which is then skipped with the reason.  The cache
still checks it against PyTorch and times it before it is chosen.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from cracksam._files import atomic_write_text, sha256_file
from cracksam.errors import CrackSAMError

FOLDER = "int8"
XML = "model_int8.xml"
RECORD = "int8.json"


def _weight_files(model_dir: Path) -> list[Path]:
    """The model's own files: everything in the folder but ``int8/`` and hidden files or folders."""
    def own(path: Path) -> bool:
        parts = path.relative_to(model_dir).parts
        return parts[0] != FOLDER and not any(part.startswith(".") for part in parts)

    return sorted(p for p in model_dir.rglob("*") if p.is_file() and own(p))


def _sums(model_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(model_dir)): sha256_file(p) for p in _weight_files(model_dir)}


def attach_int8(model_dir: str | os.PathLike[str], xml_path: str | os.PathLike[str],
                parity: dict[str, Any]) -> Path:
    """Copy the INT8 IR ``xml_path`` (+ ``.bin``) into ``model_dir/int8/`` with its record;
    ``parity``: its parity report against the float model (``passed`` must be true).  Replaces
    an earlier ``int8/`` only once the new one is complete."""
    model_dir, xml_path = Path(model_dir), Path(xml_path)
    if not parity.get("passed"):
        raise CrackSAMError(f"{xml_path} did not pass its parity check; only an INT8 export that keeps the masks is "
                            "attached to the model")
    if not (model_dir / "config.json").is_file():
        raise CrackSAMError(f"--attach needs a model folder (with config.json); {model_dir} is not one")
    if not xml_path.is_file() or not xml_path.with_suffix(".bin").is_file():
        raise CrackSAMError(f"{xml_path}: the IR's .xml and .bin must both exist to be attached")
    try:
        return _attach(model_dir, xml_path, parity)
    except OSError as exc:
        raise CrackSAMError(f"cannot attach the INT8 export to {model_dir} ({exc.strerror or exc}); copy the model "
                            "folder somewhere writable first") from None


def _attach(model_dir: Path, xml_path: Path, parity: dict[str, Any]) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}.", dir=model_dir))
    try:
        # mkdtemp's 0700 would leave an installed package's int8/ readable by its owner only.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        shutil.copyfile(xml_path, tmp / XML)
        shutil.copyfile(xml_path.with_suffix(".bin"), (tmp / XML).with_suffix(".bin"))
        record = {"weights": _sums(model_dir),
                  "files": {n: sha256_file(tmp / n) for n in (XML, Path(XML).with_suffix(".bin").name)},
                  "parity": parity, "attached": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        atomic_write_text(tmp / RECORD, json.dumps(record, indent=2) + "\n")
        final = model_dir / FOLDER
        old = model_dir / f".{FOLDER}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / XML


def attached_int8(model_dir: str | os.PathLike[str] | None) -> tuple[Path | None, str | None]:
    """``(xml, None)`` when ``model_dir`` carries an attached INT8 IR whose checksums all match;
    ``(None, why)`` when it carries one that cannot be used; ``(None, None)`` when it has none."""
    if model_dir is None or not (Path(model_dir) / FOLDER / RECORD).is_file():
        return None, None
    folder = Path(model_dir) / FOLDER
    try:
        record = json.loads((folder / RECORD).read_text())
        weights, files = dict(record["weights"]), dict(record["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{folder / RECORD} is unreadable ({type(exc).__name__})"
    for name, digest in files.items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            return None, f"{path} is missing or does not match its checksum in {RECORD}"
    if weights != _sums(Path(model_dir)):
        return None, f"{folder} was made from other weights than {model_dir}'s (re-export it with --attach)"
    return folder / XML, None


__all__ = ["FOLDER", "RECORD", "XML", "attach_int8", "attached_int8"]
