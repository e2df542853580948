"""Run-length encoding of binary masks: the one encoder, for the service's JSON answers and the COCO
export.

The format is COCO's *uncompressed* RLE, so ``pycocotools.mask.frPyObjects`` reads it as is (and
compresses it: the COCO export's ``segmentation`` is that compressed form):

* ``size`` is ``[height, width]``;
* the mask is flattened in **column-major** (Fortran) order: down the first column, then the
  second, ... (COCO's order; ``mask.ravel(order="F")`` in numpy);
* ``counts`` are the lengths of alternating runs, **starting with background** (0): a mask whose
  first pixel is crack starts with a count of 0.  The counts add up to ``height * width``.

Example: the 2 x 3 mask ``[[0, 1, 1], [0, 0, 1]]`` flattens column-major to ``0 0 1 0 1 1`` and
encodes as ``{"size": [2, 3], "counts": [2, 1, 1, 2]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["RLE_ORDER", "decode_rle", "encode_rle"]

RLE_ORDER = "column-major"


def encode_rle(mask: np.ndarray, image_size: Sequence[int] | None = None,
               origin: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """``{"size": [h, w], "counts": [...], "order": "column-major"}`` for a 2-D mask (nonzero = 1).

    With ``image_size`` (``(height, width)``), ``mask`` is a window of a larger image whose top-left
    pixel is at ``origin`` (``(x, y)``), everything outside it background: one crack's bounding box
    costs its own pixels, not the whole photo's.
    """
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    h, w = mask.shape
    height, width = (h, w) if image_size is None else (int(image_size[0]), int(image_size[1]))
    x, y = (int(v) for v in origin)
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"a {h} x {w} window at x={x}, y={y} is not inside a {height} x {width} image")
    # A background row under each column, so that no run crosses from one column to the next here.
    padded = np.zeros((h + 1, w), np.int8)
    padded[:h] = np.asarray(mask, dtype=bool)
    edges = np.diff(padded.ravel(order="F"), prepend=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # ends exclusive
    column, row = np.divmod(starts, h + 1)
    first = (column + x) * height + y + row  # each run's first pixel in the whole image
    last = first + (ends - starts)
    # Runs that meet in the whole image (down to a column's end, on from the next one's top) are one.
    if first.size:
        apart = first[1:] != last[:-1]
        first, last = first[np.r_[True, apart]], last[np.r_[apart, True]]
    counts = np.empty(2 * len(first) + 1, np.int64)
    counts[0::2] = np.r_[first, height * width] - np.r_[0, last]  # background before each run, then after
    counts[1::2] = last - first
    if counts[-1] == 0:  # the mask ends with crack (or is empty): no trailing run of background
        counts = counts[:-1]
    return {"size": [height, width], "counts": counts.tolist(), "order": RLE_ORDER}


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
