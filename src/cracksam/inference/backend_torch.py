"""The PyTorch backend (:class:`TorchBackend`), the input-shape check every backend shares and the
metadata a model's exports carry.  Re-exported by :mod:`cracksam.inference.backends`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cracksam import __version__
from cracksam.config import to_dict
from cracksam.errors import ConfigError
from cracksam.models.cracksam import CrackSAM, CrackSAMConfig
from cracksam.models.segmodels import SegModel, SegModelConfig


def check_input(x: np.ndarray, image_size: int, multiple: int | None = None) -> np.ndarray:
    """``x`` as contiguous float32 after checking its shape: (B, 3, S, S), or with ``multiple``
    (a dynamic-shape model) (B, 3, H, W) with H and W positive multiples of it."""
    x = np.asarray(x)
    if multiple is not None:
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[2:]) < 1 or x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(f"expected images of shape (B, 3, H, W) with H and W multiples of {multiple}, "
                             f"got {x.shape}")
    elif x.ndim != 4 or x.shape[1] != 3 or x.shape[2:] != (image_size, image_size):
        raise ValueError(f"expected images of shape (B, 3, {image_size}, {image_size}), got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def check_torch_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device` that exists here; a :class:`ConfigError` (one line,
    no traceback) for an unknown name or a CUDA device on a machine without one."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {str(device)!r}: not a PyTorch device (cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r}: PyTorch sees no CUDA GPU on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    return dev


class TorchBackend:
    """A segmentation ``nn.Module`` (CrackSAM, or any model whose ``config.image_size`` gives its
    input size and whose output is (B, 2, S, S) logits) run eagerly under ``torch.inference_mode``.

    ``threads`` sets ``torch.set_num_threads`` (a process-wide setting).  The model is put in
    eval mode and moved to ``device``; it is not copied and LoRA is not merged.

    ``dynamic`` / ``multiple`` default to the model's ``dynamic_input`` / ``input_multiple``
    attributes (a :class:`SegModel` has them; CrackSAM and other models run only at S×S); pass
    them to declare another fully convolutional model."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", threads: int | None = None,
                 dynamic: bool | None = None, multiple: int | None = None) -> None:
        if not isinstance(getattr(getattr(model, "config", None), "image_size", None), int):
            raise TypeError(f"TorchBackend needs a model with config.image_size, got {type(model).__name__}")
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.device = check_torch_device(device)
        self.model = model.to(self.device).eval()
        config: Any = model.config  # checked above; torch types module attributes as Tensor | Module
        self.image_size = int(config.image_size)
        self.dynamic = bool(getattr(model, "dynamic_input", False) if dynamic is None else dynamic)
        self.multiple = int(getattr(model, "input_multiple", 1) if multiple is None else multiple)
        if self.multiple < 1:
            raise ValueError(f"multiple must be >= 1, got {self.multiple}")
        dtype = next(model.parameters(), torch.empty(0)).dtype
        self.precision = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")
        self._dtype = dtype
        known = isinstance(model, (CrackSAM, SegModel))
        self.model_config: CrackSAMConfig | SegModelConfig | None = config if known else None
        self.metadata: dict[str, str] = (
            model_metadata(config, self.precision)
            if known
            else {"format": "torch", "model": type(model).__name__, "image_size": str(self.image_size)}
        )
        self.path: Path | None = None

    def run(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, self.image_size, self.multiple if self.dynamic else None)
        with torch.inference_mode():
            images = torch.from_numpy(x).to(self.device, self._dtype)
            return self.model(images).float().cpu().numpy()

    def __repr__(self) -> str:
        shapes = f", dynamic (multiple of {self.multiple})" if self.dynamic else ""
        return f"TorchBackend(device={self.device}, image_size={self.image_size}, precision={self.precision}{shapes})"


def model_metadata(config: CrackSAMConfig | SegModelConfig, precision: str) -> dict[str, str]:
    """The metadata stored in exported files (and shown by :class:`TorchBackend`)."""
    return {
        "format": "cracksam",
        "version": __version__,
        "config": json.dumps(to_dict(config), sort_keys=True),
        "image_size": str(config.image_size),
        "precision": precision,
    }
