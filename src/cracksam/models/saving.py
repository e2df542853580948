"""Saving models in CrackSAM's own checkpoint format (the format is described in
:mod:`cracksam.models.io`, which reads it and re-exports these savers).

Kept apart from the reader because reading resolves what a user names (``default``, a run folder,
a training ``.ckpt``), and turning a ``.ckpt`` into a model folder saves one
(:mod:`cracksam.models.run_checkpoint`): the saver sits below the resolver, the reader above it.
Both files are written atomically (weights first, config last), so a crash mid-save leaves the
previous checkpoint readable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from cracksam import __version__
from cracksam.config import atomic_write_text, to_dict
from cracksam.errors import CheckpointError
from cracksam.models.cracksam import CrackSAM
from cracksam.models.deltas import has_lora
from cracksam.models.integrity import CONFIG_DIGEST_KEY, check_bounds, config_digest, sha256_file
from cracksam.models.layout import CONFIG_NAME, FORMAT, FORMAT_VERSION, WEIGHTS_NAME, Kind, atomic_save_file
from cracksam.models.quantizer_files import remove_quantizer_files, save_quantizers, split_quantizers
from cracksam.models.segmodels import SegModel


def _architecture(model: Any) -> str:
    if isinstance(model, CrackSAM):
        return "cracksam"
    if isinstance(model, SegModel):
        return "segmodel"
    raise CheckpointError(f"cannot save a {type(model).__name__}: expected CrackSAM or a registry model")


def _save(model: CrackSAM | SegModel, directory: str | os.PathLike[str], kind: Kind, tensors: dict[str, torch.Tensor],
          base: str | None, extra: dict[str, Any] | None) -> Path:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory}: exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_NAME
    # A model trained with QAT carries NNCF's quantisers: they go to their own files, the float
    # weights stay a plain checkpoint (cracksam.models.quantizers).
    tensors, quantizers = split_quantizers({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    params = {name for name, _ in model.named_parameters()}
    atomic_save_file(tensors, weights, metadata={"format": FORMAT, "kind": kind})
    if quantizers:
        save_quantizers(model, directory, sha256_file(weights))
    else:
        remove_quantizer_files(directory)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "architecture": _architecture(model),
        "model": to_dict(model.config),
        "lora_merged": kind == "full",
        "base_checkpoint": base,
        "cracksam_version": __version__,
        "num_tensors": len(tensors),
        # Learnable parameters, counted as `cracksam info` and papers count them; buffers (batch-norm
        # statistics) are stored too but are not parameters.
        "num_parameters": int(sum(t.numel() for k, t in tensors.items() if k in params)),
        "num_buffer_values": int(sum(t.numel() for k, t in tensors.items() if k not in params)),
        # What the weights were trained at: kept through re-exports of a loaded model.
        "trained_image_size": int(getattr(model, "trained_image_size", None) or model.config.image_size),
        "weights_sha256": sha256_file(weights),
        **(extra or {}),
    }
    check_bounds(config, str(directory / CONFIG_NAME))  # never write what we would refuse to read
    config[CONFIG_DIGEST_KEY] = config_digest(config)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return directory


def save_delta(model: CrackSAM, directory: str | os.PathLike[str], base: str | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Save only the trained part of ``model`` (what ``requires_grad``) into ``directory``."""
    if not has_lora(model) and model.config.delta.uses_lora:
        raise CheckpointError("LoRA is already merged into this model; save it with export_full instead")
    return _save(model, directory, "delta", model.trainable_state_dict(), base, extra)


def save_trained(model: CrackSAM | SegModel, directory: str | os.PathLike[str], base: str | None = None,
                 extra: dict[str, Any] | None = None) -> Path:
    """Save what training produced: CrackSAM's delta, or a whole student/baseline."""
    if isinstance(model, SegModel):
        return _save(model, directory, "full", model.trainable_state_dict(), None, extra)
    return save_delta(model, directory, base=base, extra=extra)


def export_full(model: CrackSAM | SegModel, directory: str | os.PathLike[str], base: str | None = None) -> Path:
    """Save every weight of ``model`` with LoRA merged (adapters stay as modules), for deployment.

    ``model`` itself is left unchanged (the merge happens on a copy of the weights)."""
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    # Fold each LoRA pair into its linear, then drop the factors.
    for name, module in model.named_modules():
        if hasattr(module, "delta_weight"):
            tensors[f"{name}.weight"] = tensors[f"{name}.weight"] + module.delta_weight().detach()
            for key in [k for k in tensors if k.startswith(f"{name}.lora_")]:
                del tensors[key]
    return _save(model, directory, "full", tensors, base, None)
