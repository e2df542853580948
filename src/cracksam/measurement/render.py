"""Annotated picture of a measurement: skeleton coloured by width, widest points, crack ids."""

from __future__ import annotations

import math

import cv2
import numpy as np

from cracksam.measurement.measure import MeasurementError, MeasureResult

__all__ = ["legend_box", "render_annotation"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MARK = (255, 0, 255)  # RGB magenta: not in the turbo colour map
_TEXT = (255, 255, 255)
_OUTLINE = (0, 0, 0)


def _base(image_or_mask: np.ndarray) -> np.ndarray:
    """RGB uint8 background: a mask is drawn dark grey on black, a photo is dimmed a little."""
    arr = np.asarray(image_or_mask)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise MeasurementError(f"cannot draw on an array of shape {arr.shape}")
    is_mask = arr.dtype == bool or (arr.ndim == 2 and arr.size and int(arr.max()) <= 1)
    if is_mask:
        grey = np.where(arr != 0, 90, 0).astype(np.uint8)
        return np.stack([grey] * 3, axis=2)
    if arr.dtype != np.uint8:
        top = float(arr.max()) if arr.size else 1.0
        scale = 255.0 / top if top > 255 else 1.0
        arr = np.clip(arr.astype(np.float64) * scale, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=2)
    return (arr.astype(np.float32) * 0.7).astype(np.uint8)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int) -> None:
    """White text on a black box: readable on any background at any size (an outline a couple of
    pixels thick around a small font fills the letters in and garbles them)."""
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
    x, y = org
    h, w = img.shape[:2]
    cv2.rectangle(img, (max(x - 2, 0), max(y - th - 2, 0)), (min(x + tw + 1, w - 1), min(y + base, h - 1)),
                  _OUTLINE, cv2.FILLED)
    cv2.putText(img, text, org, _FONT, scale, _TEXT, thick, cv2.LINE_AA)


def _overlaps(box: tuple[int, int, int, int], marks: list[tuple[int, int, int]]) -> int:
    """How many circles (x, y, radius) touch the box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return sum(1 for cx, cy, r in marks if cx + r >= x0 and cx - r <= x1 and cy + r >= y0 and cy - r <= y1)


def legend_box(shape: tuple[int, ...], label: str, scale: float, thick: int,
               marks: list[tuple[int, int, int]]) -> tuple[int, int, int, int] | None:
    """Where the colour bar and its label go: the corner whose box (x0, y0, x1, y1) touches the
    fewest crack circles (lower left first), or None when the image is too small for it."""
    height, width = shape[:2]
    (tw, th), base = cv2.getTextSize(label, _FONT, scale, thick)
    bar_w, bar_h = max(tw, 60), max(6, height // 60)
    box_w, box_h = bar_w + 4, bar_h + th + base + 8
    margin = 6
    if width < box_w + 2 * margin or height < box_h + 2 * margin:
        return None
    left, right = margin, width - margin - box_w
    top, bottom = margin, height - margin - box_h
    corners = [(left, bottom), (right, bottom), (left, top), (right, top)]
    boxes = [(x, y, x + box_w, y + box_h) for x, y in corners]
    return min(boxes, key=lambda b: _overlaps(b, marks))  # min keeps the first of equals


def _legend(img: np.ndarray, cmap, vmax: float, mm_per_px: float | None, scale: float, thick: int,
            marks: list[tuple[int, int, int]]) -> tuple[int, int, int, int] | None:
    """Colour bar labelled with the width range, in the corner clear of the crack circles."""
    label = f"width 0-{vmax:.1f} px" + (f" (0-{vmax * mm_per_px:.2f} mm)" if mm_per_px else "")
    box = legend_box(img.shape, label, scale, thick, marks)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    (tw, th), base = cv2.getTextSize(label, _FONT, scale, thick)
    bar_h = max(6, img.shape[0] // 60)
    cv2.rectangle(img, (x0, y0), (x1, y1), _OUTLINE, cv2.FILLED)
    _text(img, label, (x0 + 2, y0 + th + 3), scale, thick)
    ramp = cmap(np.linspace(0.0, 1.0, x1 - x0 - 4))[:, :3]
    img[y1 - bar_h - 2 : y1 - 2, x0 + 2 : x1 - 2] = (ramp * 255).astype(np.uint8)[None, :, :]
    return box


def render_annotation(image_or_mask: np.ndarray, result: MeasureResult, colormap: str = "turbo") -> np.ndarray:
    """RGB uint8 picture of ``result`` drawn on ``image_or_mask`` (same height and width).

    Skeleton pixels are coloured by their width (``colormap``, 0 .. the image's maximum width),
    each crack's widest point is circled in magenta (a colour the map does not use) and labelled
    with the crack id on a black box, and a colour bar gives the width scale in the corner that
    covers the fewest circles (see :func:`legend_box`).
    """
    import matplotlib

    base = _base(image_or_mask)
    height, width = base.shape[:2]
    if (width, height) != tuple(result.image_size):
        raise MeasurementError(
            f"image is {width}x{height} px but the mask measured is {result.image_size[0]}x{result.image_size[1]} px"
        )
    cmap = matplotlib.colormaps[colormap]
    out = base.copy()
    thick = max(1, round(max(width, height) / 800))
    font_scale = max(0.4, max(width, height) / 1600)
    vmax = max(float(result.totals.max_width_px), 1.0)
    widths = result.width_map
    if widths is not None and widths.any():
        if thick > 1:
            widths = cv2.dilate(widths, np.ones((2 * thick - 1, 2 * thick - 1), np.uint8))
        on = widths > 0
        colours = cmap(np.clip(widths[on] / vmax, 0.0, 1.0))[:, :3]
        out[on] = (colours * 255).astype(np.uint8)
    marks = [(c.widest_point[0], c.widest_point[1], max(5, math.ceil(c.max_width_px / 2) + 3)) for c in result.cracks]
    for crack, (cx, cy, radius) in zip(result.cracks, marks, strict=True):
        cv2.circle(out, (cx, cy), radius, _MARK, thick, cv2.LINE_AA)
        (tw, th), _ = cv2.getTextSize(str(crack.id), _FONT, font_scale, thick)
        org = (min(cx + radius + 2, width - tw - 2), max(cy - radius - 2, th + 2))
        _text(out, str(crack.id), (max(org[0], 0), org[1]), font_scale, thick)
    if result.cracks:
        _legend(out, cmap, vmax, result.mm_per_px, font_scale, thick, marks)
    return out
