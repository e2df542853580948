"""The files of the INT8 quantisers a QAT model carries (described in
:mod:`cracksam.models.quantizers`): their names, telling quantiser tensors from weights, and writing
or removing them.

The saving side of a checkpoint (:mod:`cracksam.models.saving`) needs this and must not need the
reading side, which loads the float model first (:func:`cracksam.models.quantizers.load_quantized`).
NNCF is imported only when quantisers are written or read.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch

from cracksam.config import atomic_write_text
from cracksam.errors import CheckpointError, CrackSAMError
from cracksam.models.integrity import sha256_file
from cracksam.models.layout import atomic_save_file

HOOK_PREFIX = "__nncf_hooks."
QUANTIZERS_JSON = "quantizers.json"
QUANTIZERS_TENSORS = "quantizers.safetensors"
FORMAT = "cracksam-quantizers"


def split_quantizers(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(float weights, quantiser tensors) of a state dict of a model that may carry quantisers."""
    plain = {k: v for k, v in tensors.items() if not k.startswith(HOOK_PREFIX)}
    quant = {k: v for k, v in tensors.items() if k.startswith(HOOK_PREFIX)}
    return plain, quant


def has_quantizers(model: torch.nn.Module) -> bool:
    return any(k.startswith(HOOK_PREFIX) for k in model.state_dict())


def has_quantizer_files(directory: str | os.PathLike[str]) -> bool:
    return (Path(directory) / QUANTIZERS_JSON).is_file()


def remove_quantizer_files(directory: str | os.PathLike[str]) -> None:
    """Drop a folder's quantisers (a float model saved over a QAT one must not inherit them)."""
    for name in (QUANTIZERS_JSON, QUANTIZERS_TENSORS):
        (Path(directory) / name).unlink(missing_ok=True)


def import_nncf() -> Any:
    # NNCF compiles its CPU quantiser kernels on first use and gives up after 60 s by default, which a
    # first build on 2 cores can exceed (a failed build falls back to plain torch ops; a slow one
    # raised).  Ten minutes still ends a wait on a stale build lock.
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "600")
    try:
        import nncf
        import nncf.torch
    except ImportError:
        raise CrackSAMError("nncf is not installed; install it (pip install 'cracksam[deploy]') to use QAT "
                            "quantisers") from None
    # NNCF logs to stdout, where commands print their machine-readable result (train's JSON line).
    for handler in logging.getLogger("nncf").handlers:
        if type(handler) is logging.StreamHandler and handler.stream is not sys.stderr:
            handler.setStream(sys.stderr)
    return nncf


def save_quantizers(model: torch.nn.Module, directory: str | os.PathLike[str], weights_sha256: str) -> None:
    """Write ``model``'s quantisers into ``directory`` (tensors first, the JSON that vouches for
    them last, each atomically), bound to the float weights file whose digest is given."""
    nncf = import_nncf()
    directory = Path(directory)
    # Cloned: NNCF shares one quantiser between inputs that must agree (a skip connection's
    # two branches), and safetensors refuses tensors that share memory.
    _, quant = split_quantizers({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    if not quant:
        raise CheckpointError("the model has no quantisers to save (it was not prepared for QAT)")
    tensors = directory / QUANTIZERS_TENSORS
    atomic_save_file(quant, tensors, metadata={"format": FORMAT})
    record = {
        "format": FORMAT,
        "tool": f"nncf {nncf.__version__}",
        "nncf_config": nncf.torch.get_config(model),
        "num_tensors": len(quant),
        "tensors_sha256": sha256_file(tensors),
        "weights_sha256": weights_sha256,
    }
    atomic_write_text(directory / QUANTIZERS_JSON, json.dumps(record, indent=1) + "\n")
