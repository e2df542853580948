"""Annotated picture of a measurement: skeleton coloured by width, widest points, crack ids."""

from __future__ import annotations

import math

import cv2
import numpy as np

from cracksam.measurement.measure import MeasurementError, MeasureResult

__all__ = ["render_annotation"]

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
    cv2.putText(img, text, org, _FONT, scale, _OUTLINE, thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, _TEXT, thick, cv2.LINE_AA)


def _legend(img: np.ndarray, cmap, vmax: float, mm_per_px: float | None, scale: float, thick: int) -> None:
    """Colour bar in the lower-left corner, labelled with the width range."""
    height, width = img.shape[:2]
    label = f"width 0-{vmax:.1f} px" + (f" (0-{vmax * mm_per_px:.2f} mm)" if mm_per_px else "")
    (tw, th), base = cv2.getTextSize(label, _FONT, scale, thick)
    bar_w, bar_h = max(tw, 60), max(6, height // 60)
    x0, y1 = 8, height - 8
    y0 = y1 - bar_h
    if width < bar_w + 2 * x0 or y0 - th - base - 4 < 0:
        return
    ramp = cmap(np.linspace(0.0, 1.0, bar_w))[:, :3]
    img[y0:y1, x0 : x0 + bar_w] = (ramp * 255).astype(np.uint8)[None, :, :]
    _text(img, label, (x0, y0 - base - 2), scale, thick)


def render_annotation(image_or_mask: np.ndarray, result: MeasureResult, colormap: str = "turbo") -> np.ndarray:
    """RGB uint8 picture of ``result`` drawn on ``image_or_mask`` (same height and width).

    Skeleton pixels are coloured by their width (``colormap``, 0 .. the image's maximum width),
    each crack's widest point is circled in red and labelled with the crack id, and a colour bar
    in the lower-left corner gives the width scale.
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
    font_scale = max(0.35, max(width, height) / 1600)
    vmax = max(float(result.totals.max_width_px), 1.0)
    widths = result.width_map
    if widths is not None and widths.any():
        if thick > 1:
            widths = cv2.dilate(widths, np.ones((2 * thick - 1, 2 * thick - 1), np.uint8))
        on = widths > 0
        colours = cmap(np.clip(widths[on] / vmax, 0.0, 1.0))[:, :3]
        out[on] = (colours * 255).astype(np.uint8)
    for crack in result.cracks:
        cx, cy = crack.widest_point
        radius = max(5, math.ceil(crack.max_width_px / 2) + 3)
        cv2.circle(out, (cx, cy), radius, _MARK, thick, cv2.LINE_AA)
        (tw, th), _ = cv2.getTextSize(str(crack.id), _FONT, font_scale, thick)
        org = (min(cx + radius + 2, width - tw - 2), max(cy - radius - 2, th + 2))
        _text(out, str(crack.id), (max(org[0], 0), org[1]), font_scale, thick)
    if result.cracks:
        _legend(out, cmap, vmax, result.mm_per_px, font_scale, thick)
    return out
