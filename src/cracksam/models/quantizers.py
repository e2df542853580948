"""INT8 quantisers trained with a model (quantisation-aware training), kept beside its weights.

A model folder trained with ``qat`` (:mod:`cracksam.training.qat`) holds two more files:

* ``quantizers.safetensors``: NNCF's fake-quantiser tensors (scales, bit widths, signedness),
  keyed by where NNCF hooked them into the network;
* ``quantizers.json``: where each quantiser sits (``nncf.torch.get_config``), the SHA-256 of the
  tensors file, and the SHA-256 of the float weights they were trained with, so quantisers from
  another model (or an older save of this one) are refused instead of silently misapplied.

The float weights stay a plain cracksam checkpoint: :func:`cracksam.models.io.load_model` ignores
these files and PyTorch runs the model in fp32, which is the reference every export is checked
against.  :func:`load_quantized` rebuilds the fake-quantised network, the one the INT8 export
converts.  NNCF is imported only when quantisers are saved or loaded.

Their file names and writing them are in :mod:`cracksam.models.quantizer_files` (the saving side of a
checkpoint uses them; the names are re-exported here); reading them back and attaching them are here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from cracksam.errors import CheckpointError
from cracksam.models.integrity import sha256_file
from cracksam.models.layout import WEIGHTS_NAME
from cracksam.models.quantizer_files import (
    FORMAT,
    HOOK_PREFIX,
    QUANTIZERS_JSON,
    QUANTIZERS_TENSORS,
    has_quantizer_files,
    has_quantizers,
)
from cracksam.models.quantizer_files import import_nncf as _nncf  # the name training.qat imports

# The only classes a quantizers.json may ask NNCF to build: load_from_config imports whatever
# module path the file names, so a file from elsewhere must not choose it.
ALLOWED_MODULES = ("nncf.torch.quantization.layers",)
ALLOWED_CLASSES = ("SymmetricQuantizer", "AsymmetricQuantizer")


def read_quantizer_record(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``quantizers.json`` of ``directory``, checked: its format, that it names only NNCF's
    quantiser classes, and that both files it vouches for are the ones in the folder."""
    directory = Path(directory)
    path = directory / QUANTIZERS_JSON
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cracksam quantiser record (format {FORMAT!r} expected)")
    commands = (record.get("nncf_config") or {}).get("compression_state")
    if not isinstance(commands, list) or not commands:
        raise CheckpointError(f"{path}: names no quantisers")
    for command in commands:
        where = (command.get("module_path"), command.get("module_cls_name")) if isinstance(command, dict) else None
        if where is None or where[0] not in ALLOWED_MODULES or where[1] not in ALLOWED_CLASSES:
            raise CheckpointError(f"{path}: asks for {where!r}; only NNCF's INT8 quantisers "
                                  f"({', '.join(ALLOWED_CLASSES)}) are accepted")
    tensors = directory / QUANTIZERS_TENSORS
    if not tensors.is_file():
        raise CheckpointError(f"{tensors}: missing ({QUANTIZERS_JSON} refers to it)")
    if sha256_file(tensors) != record.get("tensors_sha256"):
        raise CheckpointError(f"{tensors}: does not match the checksum in {QUANTIZERS_JSON} (truncated, corrupt "
                              "or replaced)")
    if sha256_file(directory / WEIGHTS_NAME) != record.get("weights_sha256"):
        raise CheckpointError(f"{path}: these quantisers were trained with other weights than {WEIGHTS_NAME} "
                              "(saved with another model, or the weights were replaced)")
    return record


def attach_quantizers(model: torch.nn.Module, directory: str | os.PathLike[str],
                      map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """``model`` (loaded from ``directory``'s float weights) with the folder's trained quantisers
    put back where training had them (in place; returned, in eval mode).  Raises
    :class:`CheckpointError` for a folder without quantisers or with ones that do not belong to its
    weights or do not fit the network."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    if not has_quantizer_files(directory):
        raise CheckpointError(f"{directory}: has no {QUANTIZERS_JSON}; it was not trained with --qat")
    record = read_quantizer_record(directory)
    nncf = _nncf()
    try:
        quant = load_file(str(directory / QUANTIZERS_TENSORS), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{directory / QUANTIZERS_TENSORS}: cannot read it ({exc})") from None
    if any(not k.startswith(HOOK_PREFIX) for k in quant) or len(quant) != record.get("num_tensors"):
        raise CheckpointError(f"{directory / QUANTIZERS_TENSORS}: does not hold the quantisers {QUANTIZERS_JSON} "
                              "describes")
    try:
        model = nncf.torch.load_from_config(model, record["nncf_config"], allowed_modules=ALLOWED_MODULES)
    except Exception as exc:  # NNCF raises its own types for a config that does not fit the network
        raise CheckpointError(f"{directory / QUANTIZERS_JSON}: does not fit this network ({str(exc)[:200]})") from None
    result = model.load_state_dict(quant, strict=False)
    missing = [k for k in result.missing_keys if k.startswith(HOOK_PREFIX)]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{directory / QUANTIZERS_TENSORS}: does not fit the quantisers of {QUANTIZERS_JSON} "
                              f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})")
    return model.eval()


def load_quantized(directory: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The fake-quantised network of a QAT model folder: its float weights with its trained
    quantisers (:func:`attach_quantizers`).  ``model(x)`` then computes what the INT8 export
    computes (up to rounding order)."""
    from cracksam.models.io import load_model

    return attach_quantizers(load_model(directory, map_location=map_location), directory, map_location)


__all__ = [
    "ALLOWED_CLASSES",
    "ALLOWED_MODULES",
    "FORMAT",
    "HOOK_PREFIX",
    "QUANTIZERS_JSON",
    "QUANTIZERS_TENSORS",
    "attach_quantizers",
    "has_quantizer_files",
    "has_quantizers",
    "load_quantized",
    "read_quantizer_record",
]
