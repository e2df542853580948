"""Image corruptions of the robustness protocol, in plain OpenCV.

All functions take and return ``H x W x 3`` ``uint8`` RGB images at their ORIGINAL size: the
protocol corrupts the photo first and resizes for the model afterwards, so blur kernels are in
original pixels.

* ``dim`` ("noisy1"): brightness V (HSV) minus 50, clipped at 0, then Gaussian blur 9 x 9.
* ``blurry`` ("noisy2"): Gaussian blur 21 x 21, downsample x0.5 and upsample back (bicubic).
* ``blur:K``: Gaussian blur K x K (K odd; ``blur:1`` is the identity).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import cv2
import numpy as np

from cracksam.errors import InvalidValueError

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "blurry",
    "clean",
    "corruption_names",
    "dim",
    "gaussian_blur",
    "get_corruption",
]

Corruption = Callable[[np.ndarray], np.ndarray]

DIM_V_OFFSET = 50
DIM_KERNEL = 9
BLURRY_KERNEL = 21
BLURRY_SCALE = 0.5


def _check_rgb(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        if isinstance(img, np.ndarray):
            desc = f"{img.dtype} array of shape {img.shape}"
        else:
            desc = type(img).__name__
        raise ValueError(f"corruptions expect an H x W x 3 uint8 RGB image, got {desc}")


def clean(img: np.ndarray) -> np.ndarray:
    """No corruption: returns ``img`` itself (H x W x 3 uint8)."""
    _check_rgb(img)
    return img


def dim(img: np.ndarray) -> np.ndarray:
    """Darken and soften: V channel - 50 (clipped at 0), then ``GaussianBlur((9, 9), 0)``.

    Args:
        img: ``H x W x 3`` ``uint8`` RGB.

    Returns:
        ``H x W x 3`` ``uint8`` RGB, same size.
    """
    _check_rgb(img)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    # int16 so that dark pixels clip at 0 instead of wrapping around to bright values in uint8.
    value = hsv[:, :, 2].astype(np.int16) - DIM_V_OFFSET
    hsv[:, :, 2] = np.clip(value, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return cv2.GaussianBlur(rgb, (DIM_KERNEL, DIM_KERNEL), 0)


def blurry(img: np.ndarray) -> np.ndarray:
    """Blur and lose resolution: ``GaussianBlur((21, 21), 0)``, bicubic x0.5 down, bicubic back up.

    Args:
        img: ``H x W x 3`` ``uint8`` RGB.

    Returns:
        ``H x W x 3`` ``uint8`` RGB, same size as ``img``.
    """
    _check_rgb(img)
    height, width = img.shape[:2]
    blurred = cv2.GaussianBlur(img, (BLURRY_KERNEL, BLURRY_KERNEL), 0)
    # Python's round() rounds halves to even, like OpenCV's cvRound for resize(fx=0.5).
    small_size = (max(1, round(width * BLURRY_SCALE)), max(1, round(height * BLURRY_SCALE)))
    small = cv2.resize(blurred, small_size, interpolation=cv2.INTER_CUBIC)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def gaussian_blur(img: np.ndarray, k: int) -> np.ndarray:
    """Gaussian blur with a ``k x k`` kernel (sigma from ``k``, OpenCV's rule); ``k = 1`` is identity.

    Args:
        img: ``H x W x 3`` ``uint8`` RGB.
        k: odd kernel size >= 1.

    Returns:
        ``H x W x 3`` ``uint8`` RGB, same size (a copy for ``k = 1``).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or k % 2 == 0:
        raise InvalidValueError(f"blur kernel size must be an odd integer >= 1, got {k!r}")
    _check_rgb(img)
    if k == 1:
        return img.copy()
    return cv2.GaussianBlur(img, (int(k), int(k)), 0)


CORRUPTIONS: dict[str, Corruption] = {"clean": clean, "dim": dim, "blurry": blurry}
_ALIASES = {"noisy1": "dim", "noisy2": "blurry", "none": "clean"}
_BLUR_PATTERN = re.compile(r"blur[:_-]?(\d+)")


def corruption_names() -> list[str]:
    """Names accepted by :func:`get_corruption` (``blur:K`` stands for any odd K)."""
    return [*CORRUPTIONS, *_ALIASES, "blur:K"]


def get_corruption(name: str) -> Corruption:
    """Look up a corruption by name.

    Accepts ``clean`` (alias ``none``), ``dim`` (alias ``noisy1``), ``blurry`` (alias ``noisy2``)
    and ``blur:K`` / ``blurK`` for an odd kernel size K (case-insensitive).

    Raises:
        ValueError: unknown name or invalid K; the message lists the valid names.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key in CORRUPTIONS:
        return CORRUPTIONS[key]
    match = _BLUR_PATTERN.fullmatch(key)
    if match:
        k = int(match.group(1))
        if k < 1 or k % 2 == 0:
            raise InvalidValueError(f"corruption {name!r}: blur kernel size must be odd and >= 1")
        return functools.partial(gaussian_blur, k=k)
    raise InvalidValueError(f"unknown corruption {name!r}; valid: {', '.join(corruption_names())}")
