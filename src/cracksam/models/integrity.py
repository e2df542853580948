"""Integrity of our checkpoint folders: checksums, bounds and byte-stable weights files.

A checkpoint folder is read from disk that anyone may have edited, truncated or swapped, so before
a single tensor is built:

* ``weights_sha256`` (in ``config.json``) must match ``weights.safetensors``, and
  ``config_sha256`` must match ``config.json`` itself (a SHA-256 of its canonical JSON without
  that key).  A folder without them was written by an older cracksam; it is refused unless the
  caller says ``trust`` (``--trust`` on the command line), because weights with flipped bytes
  otherwise load silently and predict garbage.  A checksum that is present and wrong is always
  refused: ``trust`` vouches for old files, not for damaged ones.
* every number is bounded, so a hand-edited ``image_size: 16384`` is one error line instead of
  a 22 GB allocation and an OOM kill.

The checksums catch accidents (a partial copy, a bit flip, an edit), not an attacker who can
rewrite both files; weights are safetensors (no code runs on load) either way.

Safetensors writes its ``__metadata__`` map in hash order, which changes from process to
process, so identical weights gave different bytes and a different model id.
:func:`canonicalize_safetensors` rewrites the header with sorted keys, in place.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import warnings
from pathlib import Path
from typing import Any

from cracksam._files import sha256_file
from cracksam.errors import CheckpointError, CrackSAMWarning

#: Largest input side a checkpoint may declare: SAM's ViT at 2048 px already needs ~16x the
#: memory of its native 1024; beyond it no model of ours was trained or fits a workstation.
MAX_IMAGE_SIZE = 2048
CONFIG_DIGEST_KEY = "config_sha256"

# (key path, low, high, integer?) for the numbers a checkpoint may hold.  Keys not listed here
# must still be finite.
_BOUNDS: dict[tuple[str, ...], tuple[float, float, bool]] = {
    ("format_version",): (1, 1000, True),
    ("num_tensors",): (0, 1_000_000, True),
    ("num_parameters",): (0, 10_000_000_000, True),
    ("num_buffer_values",): (0, 10_000_000_000, True),
    ("trained_image_size",): (16, MAX_IMAGE_SIZE, True),
    ("step",): (0, 10**12, True),
    ("epoch",): (0, 10**9, True),
    ("val_iou",): (0.0, 1.0, False),
    ("model", "image_size"): (16, MAX_IMAGE_SIZE, True),
    ("model", "inference_scale"): (0.0, 16.0, False),
    ("model", "delta", "adapter", "bottleneck"): (1, 4096, True),
    ("model", "delta", "adapter", "scale"): (-100.0, 100.0, False),
    ("model", "delta", "lora", "rank"): (1, 1024, True),
    ("model", "delta", "lora", "scaling"): (-100.0, 100.0, False),
}


def config_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of ``meta`` as canonical JSON (sorted keys, no spaces), ``config_sha256`` left out:
    the same for any formatting of the same content, so re-indenting the file does not break it."""
    body = {k: v for k, v in meta.items() if k != CONFIG_DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _numbers(value: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _numbers(v, (*path, str(k)))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _numbers(v, (*path, str(i)))]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(path, value)]
    return []


def check_bounds(meta: dict[str, Any], where: str) -> None:
    """Every number of a checkpoint config finite, and the known ones within their bounds."""
    for path, value in _numbers(meta, ()):
        name = ".".join(path)
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"{where}: {name} must be a finite number, got {value!r}")
        bounds = _BOUNDS.get(path)
        if bounds is None:
            continue
        low, high, integer = bounds
        if integer and not isinstance(value, int):
            raise CheckpointError(f"{where}: {name} must be an integer, got {value!r}")
        if not low <= value <= high:
            raise CheckpointError(f"{where}: {name} = {value!r} is out of range [{low:g}, {high:g}]")


def verify_config_digest(meta: dict[str, Any], config_path: Path, trust: bool) -> None:
    expected = meta.get(CONFIG_DIGEST_KEY)
    if expected is None:
        _missing(config_path, CONFIG_DIGEST_KEY, "config.json", trust)
        return
    if not isinstance(expected, str) or config_digest(meta) != expected:
        raise CheckpointError(f"{config_path}: does not match its {CONFIG_DIGEST_KEY} (edited or corrupt); "
                              "re-export the checkpoint instead of editing it")


def verify_weights_digest(weights_path: Path, meta: dict[str, Any], config_path: Path, trust: bool) -> None:
    expected = meta.get("weights_sha256")
    if expected is None:
        _missing(config_path, "weights_sha256", weights_path.name, trust)
        return
    if not isinstance(expected, str) or sha256_file(weights_path) != expected:
        raise CheckpointError(
            f"{weights_path}: does not match the checksum in {config_path.name} (truncated, corrupt or replaced)"
        )


def _missing(config_path: Path, key: str, what: str, trust: bool) -> None:
    if not trust:
        raise CheckpointError(
            f"{config_path}: has no {key}, so {what} cannot be verified (written by an older cracksam?); "
            "pass --trust (trust=True) to load it anyway, then re-save it"
        )
    warnings.warn(f"{config_path}: no {key}; {what} loaded unverified (--trust)", CrackSAMWarning, stacklevel=3)


def check_trained_size(meta: dict[str, Any], image_size: int, where: str) -> None:
    """Warn when a model is run at another input size than its weights were trained at: SAM's
    position tables are interpolated and conventional networks see another scale, so accuracy drops."""
    trained = meta.get("trained_image_size")
    if trained is not None and trained != image_size:
        warnings.warn(f"{where}: weights were trained at {trained} px but the model runs at {image_size} px; "
                      "expect lower accuracy", CrackSAMWarning, stacklevel=3)


def canonicalize_safetensors(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys (same length, space padded), in place.

    The data offsets are relative to the end of the header, so reordering the JSON keys changes
    nothing else; the header keeps its length so no tensor byte moves."""
    with open(path, "r+b") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length).decode("utf-8"))
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) > length:  # cannot happen for the same content; keep the file as it is then
            return
        fh.seek(8)
        fh.write(text + b" " * (length - len(text)))
