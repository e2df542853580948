"""What a model is, as bytes: the files that define it and one SHA-256 over them.

:func:`update_model_digest` is the one hashing of a model's files.  Two names are built on it, and
kept as they were so that cache entries and ids already written stay valid:

* the id ``predict``, the survey and the service report (:func:`model_id_for`): the model card
  (runtime, precision, mode, threshold, ...) and the files, ``<name>-<12 hex>``;
* the runtime cache's key (:func:`cracksam.deployment.runtime_cache.model_key`): the cracksam
  version, the runtimes installed and the files, ``<name>-<16 hex>``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cracksam._files import safe_name, update_digest


def model_files(path: Path) -> list[Path]:
    """The files whose bytes define a model: a folder's files (hidden ones left out), an ONNX file
    (with its external data, when present), an IR's .xml + .bin."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    files = [path]
    if path.suffix.lower() == ".xml" and path.with_suffix(".bin").is_file():
        files.append(path.with_suffix(".bin"))
    data = path.with_name(path.name + ".data")  # ONNX external data, when present
    if data.is_file():
        files.append(data)
    return files


def update_model_digest(digest: Any, path: str | Path) -> Any:
    """Feed the model at ``path`` to ``digest`` (a hashlib object): each of :func:`model_files`, a
    folder's files each preceded by its name within the folder; returns ``digest``."""
    path = Path(path)
    for file in model_files(path):
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        update_digest(digest, file)
    return digest


def model_id_for(card: dict[str, Any], path: str | Path | None = None) -> str:
    """A stable id: ``<name>-<12 hex>``, the hex digits from a SHA-256 of the model card and, when
    the model came from files, their contents -- so the id changes exactly when the model does
    (retrained weights, other precision, other mode or threshold)."""
    described = {k: v for k, v in card.items() if k != "file"}  # where the file lies is not what it is
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    name = "model"
    if path is not None:
        path = Path(path)
        name = path.stem if path.is_file() else path.name
        update_model_digest(digest, path)
    return f"{safe_name(name, 64)}-{digest.hexdigest()[:12]}"


__all__ = ["model_files", "model_id_for", "update_model_digest"]
