"""What ``cracksam info`` says about a checkpoint folder without importing torch.

A full SegModel checkpoint (the bundled model, ``train --arch`` runs) records its parameter count
in ``config.json``, so ``info`` needs no network built to report it: reading and verifying that
file is instant, where importing torch, timm and segmentation_models_pytorch took seconds.  The
two modules used here, :mod:`cracksam.models.default` and :mod:`cracksam.models.integrity`, import
only the standard library and cracksam's own light modules, but ``cracksam.models/__init__``
imports torch and every network; they are therefore loaded from their files on their own (a test
runs ``info`` in a fresh interpreter and checks that torch stays out).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

_KNOWN_FORMAT = 2  # cracksam.models.io.FORMAT_VERSION (a test keeps them equal); newer: the full reader says so


def _leaf(name: str) -> ModuleType:
    """``cracksam.models.<name>`` without running ``cracksam/models/__init__.py``."""
    loaded = sys.modules.get(f"cracksam.models.{name}")
    if loaded is not None:
        return loaded
    key = f"cracksam.cli._light.{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).parents[1] / "models" / f"{name}.py")
        assert spec is not None and spec.loader is not None  # a file of this package
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def light_segmodel_meta(model: str, trust: bool) -> dict[str, Any] | None:
    """The verified ``config.json`` of a full SegModel checkpoint folder that records its parameter
    count, or None for anything else (CrackSAM, delta checkpoints, older or damaged folders): the
    full reader handles those and words their errors.  A folder whose config fails its checksum is
    refused here as there (:class:`~cracksam.errors.CheckpointError`)."""
    path = _leaf("default").resolve_model_path(model)
    config_path = path / "config.json"
    if not path.is_dir() or not config_path.is_file() or not (path / "weights.safetensors").is_file():
        return None
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        return None
    version = meta.get("format_version")
    if (meta.get("format"), meta.get("kind"), meta.get("architecture")) != ("cracksam", "full", "segmodel") or \
            type(version) is not int or version > _KNOWN_FORMAT or type(meta.get("num_parameters")) is not int or \
            not isinstance(meta["model"].get("arch"), str) or not isinstance(meta["model"].get("image_size"), int):
        return None
    integrity = _leaf("integrity")
    integrity.verify_config_digest(meta, config_path, trust)
    integrity.check_bounds(meta, str(config_path))
    return meta


__all__ = ["light_segmodel_meta"]
