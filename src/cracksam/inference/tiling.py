"""Sliding-window inference: where the windows go, how they are weighted and blended, and the
padding and resizing around them (used by :class:`~cracksam.inference.predictor.Predictor`).

Overlapping windows are blended with a smooth (Hann) weight, highest in a window's centre: a
pixel near one window's edge, where that window lacks context, is decided by the neighbouring
window that sees it near its centre, so no seams show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

RunFn = Callable[[Sequence[np.ndarray]], Iterable[np.ndarray]]


def _hann_weight(size: int | tuple[int, int]) -> np.ndarray:
    """Smooth 2-D window weight (``size`` or (height, width)), highest in the centre, never zero
    (image borders stay covered).  Separable: along an image border, where every window touches
    the border, the windows' weights still fall towards their other edges (a floor on the 2-D
    product would give them all the same weight there and let the seams through)."""
    h, w = (size, size) if isinstance(size, int) else size
    ramp_h = np.maximum(np.hanning(h + 2)[1:-1], 1e-3).astype(np.float32)
    ramp_w = np.maximum(np.hanning(w + 2)[1:-1], 1e-3).astype(np.float32)
    return np.outer(ramp_h, ramp_w)


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis so that tiles of ``tile`` px cover ``length`` px."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def aligned_stride(window: int, overlap: float, multiple: int = 1) -> int:
    """Step between windows of ``window`` px overlapping by ``overlap``, rounded to a multiple of
    ``multiple`` (a network's stride: windows then start on its grid, so each sees the image as
    the whole-image forward pass would)."""
    step = window * (1.0 - overlap)
    return max(multiple, int(round(step / multiple)) * multiple)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """``image`` (H, W, C) reflected at the bottom and right to sides that are multiples of
    ``multiple`` (any pad size works, also for 1-px images)."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if not ph and not pw:
        return image
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect")


def even_windows(length: int, max_side: int, min_overlap: int, multiple: int = 1) -> tuple[int, list[int]]:
    """The fewest windows of at most ``max_side`` px that cover ``length`` px with neighbours
    overlapping by at least ``min_overlap`` px, spread evenly: (window side, start offsets).
    Sides and starts are multiples of ``multiple`` (``length`` and ``max_side`` must be too).

    Why not a fixed stride: a 4032-px side in 2048-px windows overlapping by a quarter takes 3
    windows (6144 px run); two 2048-px windows that overlap by 64 px cover it (4096 px)."""
    if min_overlap < 0 or 2 * min_overlap >= max_side or length % multiple or max_side % multiple:
        raise ValueError(f"cannot lay {max_side}-px windows overlapping by {min_overlap} px on the "
                         f"{multiple}-px grid over {length} px")
    if length <= max_side:
        return length, [0]
    # n windows of side <= max_side overlapping by >= min_overlap cover at most n*max_side - (n-1)*min_overlap.
    n = max(2, -(-(length - min_overlap) // (max_side - min_overlap)))
    while True:
        side = -(-(length + (n - 1) * min_overlap) // (n * multiple)) * multiple
        while side <= max_side:
            # Floor to the grid; the last start is exactly length - side (both on the grid).
            starts = [i * (length - side) // (n - 1) // multiple * multiple for i in range(n)]
            if all(a + side - b >= min_overlap for a, b in zip(starts, starts[1:], strict=False)):
                return side, starts
            side += multiple
        n += 1


def blend_windows(image: np.ndarray, window: tuple[int, int], stride: tuple[int, int] | None, run: RunFn,
                  origins: tuple[Sequence[int], Sequence[int]] | None = None) -> np.ndarray:
    """(2, H, W) logits of ``image`` (H, W, 3; each side >= the window's) from overlapping
    windows of ``window`` = (height, width) px placed every ``stride`` px, or at the given
    (row starts, column starts) ``origins``, Hann-weighted.
    ``run`` maps a list of windows to their (2, h, w) logits."""
    hp, wp = image.shape[:2]
    th, tw = window
    if hp < th or wp < tw:
        raise ValueError(f"image {hp}x{wp} is smaller than the window {th}x{tw}")
    if origins is None:
        if stride is None:
            raise ValueError("blend_windows needs a stride or the window origins")
        origins = (tile_origins(hp, th, stride[0]), tile_origins(wp, tw, stride[1]))
    grid = [(y, x) for y in origins[0] for x in origins[1]]
    weight = _hann_weight((th, tw))
    acc = np.zeros((2, hp, wp), np.float32)
    wsum = np.zeros((hp, wp), np.float32)
    tiles = [image[y : y + th, x : x + tw] for y, x in grid]
    for (y, x), logits in zip(grid, run(tiles), strict=True):
        acc[:, y : y + th, x : x + tw] += logits * weight
        wsum[y : y + th, x : x + tw] += weight
    return acc / wsum


def scale_image(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (each side at least 1 px): area averaging when shrinking
    (no aliasing), bilinear when enlarging; ``scale == 1`` returns it unchanged."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)


def resize_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(2, h, w) logits resized bilinearly to (2, height, width), as a network's own upsampling."""
    if logits.shape[1:] == (height, width):
        return logits
    return np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR) for c in logits])


__all__ = ["aligned_stride", "blend_windows", "even_windows", "pad_to_multiple", "resize_logits", "scale_image",
           "tile_origins"]
