"""The one interface a runtime offers the :class:`~cracksam.inference.predictor.Predictor` (and
``bench``, ``export``'s parity check, the service): PyTorch, ONNX Runtime, OpenVINO or a test double.

Kept apart from the backends so that code typing against it imports neither torch nor a runtime.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """A runtime: float32 (B, 3, S, S) RGB 0..255 -> float32 logits (B, 2, S, S), channel 1 = crack.

    Optional attributes a backend may have (read with ``getattr``): ``dynamic = True`` and
    ``multiple`` (any (B, 3, H, W) with H, W multiples of it is accepted); ``model_config`` (the
    model's config, whose inference defaults are used); ``metadata``; ``path`` (the model file);
    ``run_many(batches, in_flight)`` (several batches at once, the logits of ``run`` on each)."""

    name: str
    precision: str
    image_size: int

    def run(self, x: np.ndarray) -> np.ndarray:
        """float32 (B, 3, S, S) RGB in 0..255 -> float32 logits (B, 2, S, S).  Backends with
        ``dynamic = True`` take any (B, 3, H, W) with H, W multiples of their ``multiple``."""
        ...


__all__ = ["Backend"]
