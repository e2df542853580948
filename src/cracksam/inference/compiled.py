"""PyTorch with ``torch.compile`` (inductor, CPU): the eager model's graph compiled to fused C++
kernels, and channels-last memory for conv models (oneDNN's preferred layout for convolutions).

Compilation happens on the first call for each input shape (tens of seconds on a small CPU) and
is cached by PyTorch for the process; timing runs must warm up first.  The numerics are those of
the eager model up to the order of floating-point operations, which the parity check confirms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cracksam.errors import CrackSAMError
from cracksam.inference.backend_torch import TorchBackend, check_input


class CompiledTorchBackend(TorchBackend):
    """A :class:`TorchBackend` whose forward is ``torch.compile``-d (``backend="inductor"``).

    ``channels_last`` (None: for models with convolutions and no attention, i.e. a
    :class:`~cracksam.models.segmodels.SegModel` CNN) keeps activations in NHWC.  ``dynamic``
    shapes are compiled as dynamic for a dynamic-shape model (one compilation serves all sizes)."""

    name = "torch-compile"

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", threads: int | None = None,
                 channels_last: bool | None = None, mode: str | None = None) -> None:
        super().__init__(model, device=device, threads=threads)
        if channels_last is None:
            modules = list(self.model.modules())
            channels_last = any(isinstance(m, torch.nn.Conv2d) for m in modules) and not any(
                isinstance(m, torch.nn.MultiheadAttention) or "Attention" in type(m).__name__ for m in modules)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        try:
            self._compiled: Any = torch.compile(self.model, backend="inductor", mode=mode,
                                                dynamic=True if self.dynamic else None)
        except Exception as exc:  # no C++ compiler, unsupported platform
            raise CrackSAMError(f"torch.compile is not available here ({type(exc).__name__}: {exc})") from None

    def run(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, self.image_size, self.multiple if self.dynamic else None)
        with torch.inference_mode():
            images = torch.from_numpy(x).to(self.device, self._dtype)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            return self._compiled(images).float().contiguous().cpu().numpy()

    def __repr__(self) -> str:
        return f"CompiledTorchBackend(device={self.device}, channels_last={self.channels_last})"


__all__ = ["CompiledTorchBackend"]
