"""CrackSAM's own checkpoint format.

A checkpoint is a folder with two files:

* ``weights.safetensors``: tensors keyed by parameter name (never by position);
* ``config.json``: what is needed to rebuild the network (``CrackSAMConfig``, or ``SegModelConfig``
  for students and baselines, told apart by ``architecture``), the kind of file
  (``delta``: only the trained part, i.e. adapter/LoRA + prompt encoder + mask decoder, to be
  put on an official SAM base; ``full``: every weight with LoRA merged, for deployment), the
  base checkpoint it was trained on, the input size the weights were trained at, and two
  SHA-256 checksums -- of the weights file and of ``config.json`` itself -- so a truncated,
  swapped or edited file is caught (see :mod:`cracksam.models.integrity`, which also bounds
  every number).  Folders without the checksums (format 1) load only with ``trust=True``.

This module reads them: :func:`load_model` takes whatever a user names as a model (``default``, a
run folder, a training ``.ckpt``: :func:`cracksam.models.default.resolve_model_path`).  The savers
(:func:`save_trained`, :func:`save_delta`, :func:`export_full`) live in :mod:`cracksam.models.saving`
and the file names in :mod:`cracksam.models.layout`, below the resolver that needs them; both are
re-exported here.  Both files are written atomically (weights first, config last), so a crash
mid-save leaves the previous checkpoint readable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from cracksam.config import from_dict, to_dict
from cracksam.errors import CheckpointError, ConfigError
from cracksam.models.cracksam import CrackSAM, CrackSAMConfig, build_cracksam
from cracksam.models.default import resolve_model_path
from cracksam.models.integrity import check_bounds, check_trained_size, verify_config_digest, verify_weights_digest
from cracksam.models.layout import CONFIG_NAME, FORMAT, FORMAT_VERSION, WEIGHTS_NAME
from cracksam.models.sam_checkpoint import load_sam_checkpoint
from cracksam.models.saving import export_full, save_delta, save_trained
from cracksam.models.segmodels import SegModel, SegModelConfig, build_segmodel

ModelConfig = CrackSAMConfig | SegModelConfig


def parse_model_config(data: dict[str, Any], where: str = "model") -> ModelConfig:
    """A model config dict (from config.json or export metadata) -> its dataclass: ``arch`` names a
    conventional network (:class:`SegModelConfig`), otherwise it is CrackSAM's."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    if "arch" in data:
        return from_dict(SegModelConfig, data, where=where)
    return from_dict(CrackSAMConfig, data, where=where)


def _locate(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    path = resolve_model_path(path)  # "default", or a training run folder -> its best/
    directory = path.parent if path.is_file() else path
    config, weights = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not directory.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not config.is_file() or not weights.is_file():
        raise CheckpointError(
            f"{directory}: not a CrackSAM checkpoint folder (expected {CONFIG_NAME} and {WEIGHTS_NAME}); "
            "official SAM .pth files are given as the base checkpoint instead"
        )
    return config, weights


def checkpoint_folder(path: str | os.PathLike[str]) -> Path:
    """The folder holding the checkpoint ``path`` names ("default", a run folder's best/, a folder)."""
    return _locate(path)[0].parent


def read_checkpoint_config(path: str | os.PathLike[str], trust: bool = False) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder, verified against its checksum (missing:
    refused unless ``trust``) and bounded; ``model_config`` holds the rebuilt config dataclass."""
    config_path, _ = _locate(path)
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8, bad JSON, NaN/Infinity
        raise CheckpointError(f"{config_path}: unreadable checkpoint config ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{config_path}: not a CrackSAM checkpoint config")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{config_path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: written by a newer cracksam (format {meta['format_version']}); upgrade cracksam"
        )
    if meta.get("kind") not in ("delta", "full"):
        raise CheckpointError(f"{config_path}: unknown checkpoint kind {meta.get('kind')!r}")
    verify_config_digest(meta, config_path, trust)
    check_bounds(meta, str(config_path))
    try:
        meta["model_config"] = parse_model_config(meta.get("model", {}), where=f"{config_path.name}:model")
    except ConfigError as exc:
        raise CheckpointError(f"{config_path}: {exc}") from None
    return meta


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _read_weights(weights_path: Path, meta: dict[str, Any], device: str | torch.device,
                  trust: bool = False) -> dict[str, torch.Tensor]:
    verify_weights_digest(weights_path, meta, weights_path.with_name(CONFIG_NAME), trust)
    try:
        tensors = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: cannot read weights ({exc})") from None
    if "num_tensors" in meta and meta["num_tensors"] != len(tensors):
        raise CheckpointError(f"{weights_path}: holds {len(tensors)} tensors, {CONFIG_NAME} says {meta['num_tensors']}")
    return tensors


def _check_same(saved: ModelConfig, model: ModelConfig, where: str) -> None:
    mine, theirs = to_dict(model), to_dict(saved)
    diffs = [f"{k}: checkpoint {theirs[k]!r} vs model {mine[k]!r}" for k in theirs if theirs[k] != mine[k]]
    if diffs:
        raise CheckpointError(f"{where}: checkpoint does not fit this model ({'; '.join(diffs)})")


def apply_delta_checkpoint(model: CrackSAM, path: str | os.PathLike[str],
                           map_location: str | torch.device = "cpu", trust: bool = False) -> dict[str, Any]:
    """Load a delta checkpoint into ``model`` (whose base weights are already loaded).

    The saved config must equal the model's (backbone, input size, delta, normalisation, classes)
    and the file must hold exactly the model's trainable parameters with the same shapes.
    ``trust``: accept a folder without checksums (see :mod:`cracksam.models.integrity`)."""
    meta = read_checkpoint_config(path, trust=trust)
    config_path, weights_path = _locate(path)
    if not isinstance(meta["model_config"], CrackSAMConfig):
        raise CheckpointError(f"{config_path.parent}: holds a {meta['model_config'].arch} model, not a CrackSAM delta")
    if meta["kind"] != "delta":
        raise CheckpointError(f"{config_path.parent}: is a full export; load it with load_model")
    _check_same(meta["model_config"], model.config, str(config_path.parent))
    tensors = _read_weights(weights_path, meta, map_location, trust)
    trainable = model.trainable_state_dict()
    missing = sorted(set(trainable) - set(tensors))
    unknown = sorted(set(tensors) - set(trainable))
    if missing or unknown:
        raise CheckpointError(
            f"{weights_path}: parameter names do not match the model"
            + (f"; missing {missing[:5]}" if missing else "")
            + (f"; unknown {unknown[:5]}" if unknown else "")
        )
    wrong = [f"{k} {tuple(tensors[k].shape)} != {tuple(trainable[k].shape)}"
             for k in trainable if tensors[k].shape != trainable[k].shape]
    if wrong:
        raise CheckpointError(f"{weights_path}: shapes do not match the model: {'; '.join(wrong[:5])}")
    model.load_state_dict(tensors, strict=False)
    return meta


def _base_hint(backbone: str) -> str:
    """What a delta checkpoint without a base needs, per backbone: only vit_b/l/h have official
    weights (a ``sam_tiny_*.pth`` does not exist)."""
    from cracksam.models.backbones import get_backbone

    if get_backbone(backbone).checkpoint_url is None:
        return (f"a delta checkpoint needs its SAM base weights; the {backbone!r} test backbone has no official "
                "ones: pass --base PATH (a base saved in the official layout) or --allow-random-base")
    return (f"a delta checkpoint needs its SAM base weights; pass --base (an official sam_{backbone}_*.pth file, "
            f"or '{backbone}' to download it)")


def load_model(
    path: str | os.PathLike[str],
    base_checkpoint: str | os.PathLike[str] | None = None,
    map_location: str | torch.device = "cpu",
    allow_random_base: bool = False,
    trust: bool = False,
) -> CrackSAM | SegModel:
    """Rebuild a model from one of our checkpoints (CrackSAM, or a student/baseline).

    A ``delta`` checkpoint needs the SAM base it was trained on: ``base_checkpoint`` (a path to
    an official ``.pth`` or a name such as ``vit_b``), defaulting to the base recorded in the
    checkpoint.  ``allow_random_base`` keeps random base weights instead (tests, tiny configs).
    A ``full`` export needs nothing else.  ``trust`` accepts a folder written before checksums
    were required (``--trust``); a checksum that is present must always match.
    """
    meta = read_checkpoint_config(path, trust=trust)
    config = meta["model_config"]
    config_path, weights_path = _locate(path)
    if isinstance(config, SegModelConfig):
        if meta["kind"] != "full":
            raise CheckpointError(f"{config_path}: a {config.arch} checkpoint must be a full one")
        model: CrackSAM | SegModel = build_segmodel(config, load_pretrained=False)
        tensors = _read_weights(weights_path, meta, map_location, trust)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{weights_path}: does not fit {config.arch} ({str(exc)[:300]})") from None
        return _ready(model, meta, config_path, map_location)
    if meta["kind"] == "full":
        model = build_cracksam(config)
        model.merge()
        tensors = _read_weights(weights_path, meta, map_location, trust)
        result = model.load_state_dict(tensors, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"{weights_path}: does not fit the model (missing {result.missing_keys[:5]}, "
                f"unexpected {result.unexpected_keys[:5]})"
            )
        return _ready(model, meta, config_path, map_location)
    model = build_cracksam(config)
    base = base_checkpoint if base_checkpoint is not None else meta.get("base_checkpoint")
    if base is not None:
        load_sam_checkpoint(model, base, map_location=map_location)
    elif not allow_random_base:
        raise CheckpointError(f"{config_path.parent}: {_base_hint(config.backbone)}")
    apply_delta_checkpoint(model, path, map_location, trust=trust)
    return _ready(model, meta, config_path, map_location)


def _ready(model: CrackSAM | SegModel, meta: dict[str, Any], config_path: Path,
           map_location: str | torch.device) -> CrackSAM | SegModel:
    check_trained_size(meta, model.config.image_size, str(config_path))
    # Remembered so that export_full of this model records the size the weights were trained at.
    model.trained_image_size = int(meta.get("trained_image_size") or model.config.image_size)
    return model.to(map_location).eval()


__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "ModelConfig",
    "apply_delta_checkpoint",
    "checkpoint_folder",
    "export_full",
    "load_model",
    "parse_model_config",
    "read_checkpoint_config",
    "save_delta",
    "save_trained",
]
