"""Reading masks and images for measurement, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from cracksam._files import write_png_atomic
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


def _full_scale(values: np.ndarray) -> float:
    """What "fully crack" is in ``values``: 1 for 0/1 or float masks, else the integer type's maximum."""
    if values.dtype.kind == "f" or (values.size and int(values.max()) <= 1):
        return 1.0
    return float(np.iinfo(values.dtype).max)


def _is_two_level(values: np.ndarray) -> bool:
    """At most two values per channel, the lower one 0: a binary mask (0/1, 0/255, one colour)."""
    for channel in np.moveaxis(values.reshape(values.shape[0], values.shape[1], -1), 2, 0):
        nonzero = channel[channel != 0]
        if nonzero.size and (nonzero != nonzero.flat[0]).any():
            return False
    return True


def read_mask(path: str | os.PathLike[str], threshold: float | None = None) -> np.ndarray:
    """Binary crack mask (H x W, bool) from an image file.

    Any format OpenCV reads (PNG, TIFF, BMP, ...), 8 or 16 bit, 0/1 or 0/255: a pixel is crack
    when any colour channel is > 0.  An alpha channel is ignored unless the colour channels are
    all zero, in which case the alpha channel is the mask.

    Without ``threshold`` the image must be a binary mask (each channel 0 and at most one other
    value): a photo, an overlay or a probability map would otherwise be measured as one huge
    "crack".  ``threshold`` (a fraction in (0, 1) of full scale: 255 for 8 bit, 65535 for 16 bit)
    binarises any image instead: crack where a channel is above it.
    """
    image = _decode(path, cv2.IMREAD_UNCHANGED)
    if image.ndim == 3 and image.shape[2] == 4:
        colour = image[:, :, :3]
        alpha = image[:, :, 3]
        image = alpha if not colour.any() and alpha.min() != alpha.max() else colour
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise MeasurementError(f"{path}: unsupported image layout {image.shape}")
    if threshold is not None:
        crack = image > threshold * _full_scale(image)
    elif not _is_two_level(image):
        raise MeasurementError(
            f"{path}: not a binary mask (more than two grey levels: a photo, an overlay or a probability map?); "
            "give --threshold FRACTION to binarise it (0.5 = half of full scale)"
        )
    else:
        crack = image > 0
    return np.asarray(crack.any(axis=2)) if crack.ndim == 3 else crack


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an RGB (or grey) uint8 image as PNG, atomically."""
    write_png_atomic(path, rgb)
