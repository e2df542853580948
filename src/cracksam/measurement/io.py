"""Reading masks and images for measurement, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from cracksam.config import atomic_write_bytes
from cracksam.measurement.measure import MeasurementError

__all__ = ["read_mask", "write_png"]


def _decode(path: str | os.PathLike[str], flags: int) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise MeasurementError(f"{path}: file not found")
    if path.is_dir():
        raise MeasurementError(f"{path}: is a folder, not an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise MeasurementError(f"{path}: file is empty")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise MeasurementError(f"{path}: not a readable image (corrupt file or unsupported format)")
    return image


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Binary crack mask (H x W, bool) from an image file.

    Any format OpenCV reads (PNG, TIFF, BMP, ...), 8 or 16 bit, 0/1 or 0/255: a pixel is crack
    when any colour channel is > 0.  An alpha channel is ignored unless the colour channels are
    all zero, in which case the alpha channel is the mask.
    """
    image = _decode(path, cv2.IMREAD_UNCHANGED)
    if image.ndim == 2:
        return image > 0
    if image.ndim == 3 and image.shape[2] in (1, 3):
        return np.asarray((image > 0).any(axis=2))
    if image.ndim == 3 and image.shape[2] == 4:
        colour = np.asarray((image[:, :, :3] > 0).any(axis=2))
        alpha = image[:, :, 3]
        if not colour.any() and alpha.min() != alpha.max():
            return alpha > 0
        return colour
    raise MeasurementError(f"{path}: unsupported image layout {image.shape}")


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an RGB (or grey) uint8 image as PNG, atomically."""
    array = np.asarray(rgb)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - only for impossible arrays
        raise MeasurementError(f"{path}: could not encode the image as PNG")
    atomic_write_bytes(path, buf.tobytes())
