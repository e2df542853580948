"""Whole photos for the parity check of dynamic-shape exports.

A fully convolutional network exported with dynamic height and width runs a photo as ``predict``
does: whole, at its own resolution.  Its parity against PyTorch is therefore checked on whole,
non-square photos -- not only on S×S windows, which would leave the sizes it actually meets
untested.  Each photo is scaled as the model's ``inference_scale`` says, cropped to the largest
side ``predict`` runs in one pass (:data:`~cracksam.inference_modes.DEFAULT_WINDOW`; larger photos
are run in windows of that size) and reflect-padded to the network's stride, as the Predictor pads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cracksam.errors import ConfigError


def _network_input(image: np.ndarray, multiple: int, window: int) -> np.ndarray:
    from cracksam.inference.tiling import pad_to_multiple

    h, w = image.shape[:2]
    top, left = max(0, (h - window) // 2), max(0, (w - window) // 2)
    image = pad_to_multiple(image[top:top + window, left:left + window], multiple)
    return image.astype(np.float32).transpose(2, 0, 1)[None].copy()


def photos_for_model(model: Any, sources: Sequence[str | Path], limit: int = 4,
                     synthetic_fallback: int = 2) -> tuple[list[np.ndarray], str]:
    """(1, 3, H, W) inputs of up to ``limit`` photos from ``sources`` (files/folders) as ``model``
    runs them in native mode, and where they came from; without sources, ``synthetic_fallback``
    synthetic crack photos of non-square sizes that are no multiple of S."""
    from cracksam.data.io import read_image
    from cracksam.data.synthetic import synthetic_pair
    from cracksam.inference.tiling import scale_image
    from cracksam.inference_modes import DEFAULT_WINDOW

    size = int(model.config.image_size)
    scale = float(getattr(model.config, "inference_scale", 1.0))
    multiple = max(1, int(getattr(model, "input_multiple", 1)))
    window = max(multiple, DEFAULT_WINDOW // multiple * multiple)
    photos: list[np.ndarray] = []
    if sources:
        from cracksam.data.inputs import expand_inputs

        files, problems = expand_inputs([str(s) for s in sources])
        if problems:
            raise ConfigError("; ".join(f"{name}: {why}" for name, why in problems))
        photos = [_network_input(scale_image(read_image(p), scale), multiple, window) for p in files[:limit]]
    if photos:
        where = f"{len(photos)} whole photo(s) from {', '.join(str(s) for s in sources)}"
    else:
        shapes = [(size * 3 // 4 + 5, size * 3 // 2 + 3), (size + 7, size // 2 + 9)][:max(0, synthetic_fallback)]
        photos = [_network_input(synthetic_pair(shape, seed=200 + i)[0], multiple, window)
                  for i, shape in enumerate(shapes)]
        where = f"{len(photos)} whole synthetic photo(s) of non-square sizes (no sample folder given)"
    sizes = ", ".join(f"{p.shape[3]}×{p.shape[2]}" for p in photos)
    return photos, f"{where}: {sizes} px"


__all__ = ["photos_for_model"]
