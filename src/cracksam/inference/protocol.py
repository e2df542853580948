"""The one interface a runtime offers the :class:`~cracksam.inference.predictor.Predictor` (and
``bench``, ``export``'s parity check, the service): PyTorch, ONNX Runtime, OpenVINO or a test double;
and what the one door to a predictor (:func:`~cracksam.inference.predictor.open_predictor`) asks of
the runtime chooser handed to it (:class:`RuntimeChooser`).

Kept apart from the backends so that code typing against it imports neither torch nor a runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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


#: Told one line when something slow and worth saying happens (an export built on first use).
Announce = Callable[[str], None]


class RuntimeChooser(Protocol):
    """Which backend runs a checkpoint folder's model: ``(model_dir, model, runtime, threads,
    announce) -> (backend, info)``, ``info`` saying what was chosen and why (``runtime``,
    ``precision``, ``reason``).  Deployment's runtime cache is one
    (:func:`cracksam.deployment.runtime_cache.select_backend`); it is passed to the door, which sits
    below deployment and never imports it."""

    def __call__(self, model_dir: Path, model: Any, runtime: str, threads: int | None,
                 announce: Announce | None, /) -> tuple[Backend, dict[str, Any]]: ...


__all__ = ["Announce", "Backend", "RuntimeChooser"]
