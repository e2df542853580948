"""Pictures of cracks over their photo: the one blend (:func:`blend`), the crack overlay of
``predict --overlay``, the survey engine and ``stream --out-video`` (:func:`crack_overlay`: one
colour, one alpha), the report's picture with each crack filled in its severity colour, and
thumbnails."""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from cracksam.errors import InvalidValueError
from cracksam.inspection.core import Inspection
from cracksam.measurement.render import _base

__all__ = ["CRACK_ALPHA", "CRACK_RGB", "blend", "crack_overlay", "render_inspection", "severity_colours",
           "thumbnail_data_uri"]

#: The crack overlay's colour (RGB red) and opacity, for every command that draws one.
CRACK_RGB = (255, 40, 40)
CRACK_ALPHA = 0.7

_LOW, _HIGH = np.array([255, 214, 0], float), np.array([220, 20, 60], float)  # yellow .. crimson (RGB)


def blend(image: np.ndarray, where: np.ndarray, colour: Any, alpha: float) -> np.ndarray:
    """A copy of ``image`` (H, W, 3 uint8) with ``colour`` blended in at opacity ``alpha`` where
    ``where`` is set: one colour (3 values, in the image's channel order), or one per selected
    pixel ((n, 3), in row-major order).  Computed in float32 and truncated to uint8."""
    out = image.copy()
    sel = where.astype(bool)
    paint = np.asarray(colour, np.float32)
    out[sel] = (out[sel].astype(np.float32) * (1 - alpha) + paint * alpha).astype(np.uint8)
    return out


def crack_overlay(image: np.ndarray, mask: np.ndarray, *, bgr: bool = False) -> np.ndarray:
    """``image`` with the crack pixels of ``mask`` blended towards :data:`CRACK_RGB` at
    :data:`CRACK_ALPHA`; ``bgr``: the image is OpenCV's BGR (a video frame)."""
    return blend(image, mask, CRACK_RGB[::-1] if bgr else CRACK_RGB, CRACK_ALPHA)


def severity_colours(n: int) -> list[tuple[int, int, int]]:
    """``n`` RGB colours from yellow (lowest band) to crimson (highest)."""
    if n == 1:
        return [(int(_HIGH[0]), int(_HIGH[1]), int(_HIGH[2]))]
    out = []
    for k in range(n):
        r, g, b = (int(round(v)) for v in _LOW + (_HIGH - _LOW) * k / (n - 1))
        out.append((r, g, b))
    return out


def render_inspection(image_or_mask: np.ndarray, ins: Inspection, alpha: float = 0.65) -> np.ndarray:
    """RGB uint8: cracks filled in their severity colour over the (dimmed) photo, each labelled
    with its id and the first letter of its type at its widest point."""
    out = _base(image_or_mask)
    if out.shape[:2] != ins.labels.shape:
        raise InvalidValueError(f"picture is {out.shape[1]}x{out.shape[0]} px but the mask is "
                         f"{ins.labels.shape[1]}x{ins.labels.shape[0]} px")
    colours = np.array([(0, 0, 0)] + severity_colours(len(ins.scheme.bands)), np.float32)
    lut = np.zeros(len(ins.measure.cracks) + 1, np.int64)
    for crack, g in zip(ins.measure.cracks, ins.grades, strict=True):
        lut[crack.id] = g.rank + 1
    on = ins.labels > 0
    out = blend(out, on, colours[lut[ins.labels[on]]], alpha)
    height, width = out.shape[:2]
    scale = max(0.4, max(width, height) / 1400)
    thick = max(1, round(scale * 1.5))
    for crack, cls in zip(ins.measure.cracks, ins.classes, strict=True):
        x, y = crack.widest_point
        text = f"{crack.id}{cls.type[0].upper()}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        org = (int(min(max(x + 4, 0), width - tw - 1)), int(min(max(y - 4, th + 1), height - 1)))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def thumbnail_data_uri(rgb: np.ndarray, max_side: int = 240) -> str:
    """A small JPEG of ``rgb`` as a ``data:`` URI, for embedding in the HTML report."""
    height, width = rgb.shape[:2]
    f = min(1.0, max_side / max(height, width))
    small = cv2.resize(rgb, (max(1, round(width * f)), max(1, round(height * f))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:  # pragma: no cover
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
