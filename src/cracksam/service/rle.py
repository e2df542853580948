"""Run-length encoding of binary masks for the JSON answers of the service.

The format is COCO's *uncompressed* RLE, so ``pycocotools.mask.frPyObjects`` reads it as is:

* ``size`` is ``[height, width]``;
* the mask is flattened in **column-major** (Fortran) order: down the first column, then the
  second, ... (COCO's order; ``mask.ravel(order="F")`` in numpy);
* ``counts`` are the lengths of alternating runs, **starting with background** (0): a mask whose
  first pixel is crack starts with a count of 0.  The counts add up to ``height * width``.

Example: the 2 x 3 mask ``[[0, 1, 1], [0, 0, 1]]`` flattens column-major to ``0 0 1 0 1 1`` and
encodes as ``{"size": [2, 3], "counts": [2, 1, 1, 2]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["RLE_ORDER", "decode_rle", "encode_rle"]

RLE_ORDER = "column-major"


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """``{"size": [h, w], "counts": [...], "order": "column-major"}`` for a 2-D mask (nonzero = 1)."""
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    h, w = mask.shape
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return {"size": [h, w], "counts": [], "order": RLE_ORDER}
    # Indices where the value changes, plus both ends, delimit the runs.
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds)
    if flat[0]:
        counts = np.concatenate(([0], counts))
    return {"size": [h, w], "counts": counts.astype(np.int64).tolist(), "order": RLE_ORDER}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """The ``bool`` (h, w) mask of an RLE made by :func:`encode_rle` (or COCO's uncompressed RLE)."""
    h, w = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.size and (counts < 0).any():
        raise ValueError("RLE counts must be >= 0")
    if int(counts.sum()) != h * w:
        raise ValueError(f"RLE counts add up to {int(counts.sum())}, expected {h} x {w} = {h * w}")
    values = np.arange(counts.size) % 2 == 1  # runs alternate background, crack, background, ...
    flat = np.repeat(values, counts)
    return flat.reshape((h, w), order="F")
