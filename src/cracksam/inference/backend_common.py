"""What the backends of exported files (ONNX Runtime in :mod:`cracksam.inference.backends`, OpenVINO
in :mod:`cracksam.inference.backend_openvino`) share: the ``cracksam`` metadata an export carries
and how each item is read back, and the checks and messages for opening a file.

The metadata is written by :mod:`cracksam.deployment.export`: ONNX stores it in ``metadata_props``
as ``cracksam.<key>``, OpenVINO IRs in ``rt_info`` under ``cracksam/<key>``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cracksam.errors import CheckpointError, ConfigError, CrackSAMError, CrackSAMWarning
from cracksam.models.cracksam import CrackSAMConfig
from cracksam.models.segmodels import SegModelConfig

META_PREFIX = "cracksam"
META_KEYS = ("format", "version", "config", "image_size", "precision", "lora_merged", "exporter", "source",
             "quantization", "fusion", "dynamic", "multiple")
PRECISIONS = ("fp32", "fp16", "int8")


def missing_dependency(package: str, extra: str = "deploy") -> CrackSAMError:
    """The error for an optional dependency that is not installed (raise it ``from None``)."""
    return CrackSAMError(f"{package} is not installed; install it (pip install 'cracksam[{extra}]') to use this")


def require_file(path: str | os.PathLike[str], kind: str) -> Path:
    """``path`` as a Path when it is an existing file; a :class:`CheckpointError` saying "not found" or
    "is not a file" (naming ``kind``) otherwise, before any optional runtime is imported."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: {kind} file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a file (expected a {kind} file)")
    return path


def first_line(exc: BaseException) -> str:
    """A runtime's error in one line: the runtimes raise messages of many lines (C++ stack traces)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def parse_config(text: str | None, where: str) -> CrackSAMConfig | SegModelConfig | None:
    """The model config stored in an exported file; None when absent or not understood (a file
    from a newer cracksam still runs, it just has no model card)."""
    if not text:
        return None
    from cracksam.models.io import parse_model_config

    try:
        return parse_model_config(json.loads(text), where=f"{where}:config")
    except (json.JSONDecodeError, ConfigError) as exc:
        warnings.warn(f"{where}: ignoring unreadable cracksam config metadata ({exc})", CrackSAMWarning, stacklevel=3)
        return None


def image_size_from(meta: dict[str, str], shape: Sequence[Any], where: str) -> int:
    """Image size from the metadata, checked against the graph's input shape (B, 3, S, S)."""
    static = [d if isinstance(d, int) and d > 0 else None for d in list(shape)[2:4]]
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise CheckpointError(f"{where}: input shape {list(shape)} is not (B, 3, S, S); not a CrackSAM model")
    size: int | None = None
    if meta.get("image_size"):
        try:
            size = int(meta["image_size"])
        except ValueError:
            raise CheckpointError(f"{where}: bad image_size metadata {meta['image_size']!r}") from None
    if size is None:
        if static[0] is None or static[0] != static[1]:
            raise CheckpointError(f"{where}: cannot tell the input size (no metadata, input shape {list(shape)})")
        size = static[0]
    if any(s is not None and s != size for s in static):
        raise CheckpointError(f"{where}: metadata says image size {size} but the graph's input is {list(shape)}")
    return size


def precision_from_name(path: Path) -> str | None:
    """fp32/fp16/int8 when the file's name says so (``model_int8.onnx``), for files without metadata."""
    match = re.search(r"(?:^|[^a-z0-9])(fp32|fp16|int8)(?:[^a-z0-9]|$)", path.stem.lower())
    return match.group(1) if match else None


def dynamic_from(meta: dict[str, str]) -> tuple[bool, int]:
    """(dynamic, multiple) from an export's metadata; fixed-shape when absent or malformed."""
    try:
        multiple = int(meta.get("multiple", "1"))
    except ValueError:
        return False, 1
    return meta.get("dynamic") == "true" and multiple >= 1, max(1, multiple)
