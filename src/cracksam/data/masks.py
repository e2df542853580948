"""Reading crack masks, the one mask reader of the project (training and evaluation data here,
``cracksam measure`` and the inspection report through :mod:`cracksam.measurement.io`): two-level
masks checked as such, or thresholded at a fraction of their full scale (JPEG and anti-aliased
masks).  Errors are :class:`~cracksam.errors.DatasetError` subclasses naming the file, as for images
(:mod:`cracksam.data.io`): :class:`MaskFileError` (nothing to decode), :class:`MaskLevelError` (not
two levels), and those of :mod:`cracksam.data.opening` (not an image, corrupt, too large)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from cracksam.data.opening import DEFAULT_MAX_PIXELS, open_path, oriented
from cracksam.errors import ConfigError, DatasetError

__all__ = ["MaskFileError", "MaskLevelError", "check_mask_threshold", "mask_full_scale", "read_mask"]


class MaskFileError(DatasetError):
    """The mask file is missing, a folder or empty: there is nothing to decode."""


class MaskLevelError(DatasetError):
    """A mask has more than two distinct values (or two that do not include 0 for background)."""


# Modes with a real alpha channel (RGBX's fourth band is padding).
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _without_alpha(values: np.ndarray) -> np.ndarray:
    """The colour (or palette index) bands of ``H x W x (C + 1)`` values, or the alpha band where the
    colour is black everywhere and the alpha is not uniform: such a mask draws its crack in alpha."""
    colour, alpha = values[:, :, :-1], values[:, :, -1]
    if not colour.any() and alpha.size and alpha.min() != alpha.max():
        return alpha
    return colour[:, :, 0] if colour.shape[2] == 1 else colour


def _mask_values(im: Image.Image) -> np.ndarray:
    """Pixel values of a mask: ``H x W`` or ``H x W x C`` (alpha removed), any integer dtype."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=np.uint8)
    if mode == "P":
        # Palette masks are label maps (VOC style): the index is the label, the colour only a display.
        return np.asarray(im)
    if mode in _ALPHA_MODES:
        # A palette's index stays the label (PA); premultiplied RGBa is taken back to RGBA.
        return _without_alpha(np.asarray(im.convert("RGBA") if mode == "RGBa" else im))
    if mode == "RGBX":
        return np.asarray(im.convert("RGB"))
    if mode in ("L", "I", "RGB") or mode.startswith("I;16"):
        return np.asarray(im)
    if mode == "F":
        return np.asarray(im)
    return np.asarray(im.convert("RGB"))


def _levels(values: np.ndarray) -> np.ndarray:
    """Distinct pixel values; for multi-channel masks, distinct colours packed into one integer."""
    if values.ndim == 3:
        channels = values.shape[2]
        # Fast path: a gray mask saved as RGB has identical channels.
        if all(np.array_equal(values[:, :, 0], values[:, :, c]) for c in range(1, channels)):
            values = values[:, :, 0]
        else:
            packed = np.zeros(values.shape[:2], dtype=np.int64)
            for c in range(channels):
                packed = packed * 65536 + values[:, :, c].astype(np.int64)
            return np.unique(packed)
    if values.dtype == np.uint8:
        # bincount is O(n), much faster than the sort in np.unique for big masks.
        return np.flatnonzero(np.bincount(values.ravel(), minlength=256))
    return np.unique(values)


def _format_levels(levels: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in levels[:limit].tolist())
    return shown + (f", ... ({len(levels)} in all)" if len(levels) > limit else "")


def check_mask_threshold(threshold: float | None, option: str = "mask threshold") -> float | None:
    """``threshold`` if it is None or in (0, 1); a :class:`ConfigError` otherwise."""
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ConfigError(f"{option} must be a fraction in (0, 1) of the mask's full scale (0.5: half), "
                          f"got {threshold:g}")
    return threshold


def mask_full_scale(values: np.ndarray) -> float:
    """The value of "fully crack" in a mask array: 1 for float or 0/1 masks, else the integer
    type's maximum (a JPEG mask of a thin crack may never reach 255, so not the array's maximum)."""
    if values.dtype.kind == "f" or values.dtype == bool or (values.size and int(values.max()) <= 1):
        return 1.0
    if values.dtype.itemsize >= 4 and int(values.max()) <= 65535:
        return 65535.0  # Pillow opens 16-bit PNGs as 32-bit integers ("I")
    return float(np.iinfo(values.dtype).max)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MaskFileError(f"{path}: file not found")
    if path.is_dir():
        raise MaskFileError(f"{path}: is a folder, not an image file")
    try:
        with open(path, "rb") as fh:  # an unreadable file (permissions) named as such, not as "corrupt"
            empty = not fh.read(1)
    except OSError as exc:
        raise MaskFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if empty:
        raise MaskFileError(f"{path}: file is empty")


def read_mask(
    path: str | os.PathLike[str],
    strict: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
) -> np.ndarray:
    """Read a binary crack mask.

    Accepted encodings: 0/255 or 0/1 (or 0/any value), single channel, RGB(A) or palette (the
    index is the label, whatever colour it shows as).  A pixel is crack (1) when any channel is
    non-zero.  An alpha channel is ignored unless the colour is black everywhere and the alpha is
    not uniform: then the alpha channel is the mask.

    Args:
        path: mask file.
        strict: if true (default), a mask must have at most two distinct values (colours), and with
            two values the lower one must be 0; anything else raises :class:`MaskLevelError`. If false,
            the mask is thresholded at half its maximum value (per channel, any channel above -> crack),
            which tolerates JPEG-compressed masks.
        max_pixels: see :func:`read_image`.
        threshold: a fraction in (0, 1) of the full-scale value (255 for 8-bit masks, 65535 for
            16-bit, 1.0 for float masks, 1 for 0/1 masks): a pixel is crack when any channel is
            above ``threshold * full scale``.  Given, it replaces the two-level check, so JPEG and
            anti-aliased masks (many grey levels) are accepted; ``strict`` is then unused.

    Returns:
        ``H x W`` ``uint8`` array with values in ``{0, 1}``, EXIF orientation applied.

    Raises:
        DatasetError: :class:`MaskFileError` for a missing, empty file or a folder; those of
            :func:`~cracksam.data.opening.open_source` for an unreadable or too large one;
            :class:`MaskLevelError` for a mask with values other than two levels when ``strict``.
    """
    _check_file(Path(path))
    with open_path(path, max_pixels) as im:
        values = _mask_values(oriented(im))
    if values.dtype.kind == "f":
        values = np.nan_to_num(values)
    if threshold is not None:
        binary = values > threshold * mask_full_scale(values)
    elif strict:
        levels = _levels(values)
        if len(levels) > 2:
            raise MaskLevelError(
                f"{path}: mask with values other than two levels (found {_format_levels(levels)}; "
                "expected 0 for background and one value for crack; for JPEG or anti-aliased masks "
                "give a mask threshold, e.g. --mask-threshold 0.5)"
            )
        if len(levels) == 2 and levels[0] != 0:
            raise MaskLevelError(
                f"{path}: mask with values other than two levels 0/crack (found {_format_levels(levels)}; "
                "background must be 0)"
            )
        binary = values > 0
    else:
        maximum = values.max(axis=(0, 1)) if values.size else 0
        binary = values > (np.asarray(maximum) / 2.0)
    if binary.ndim == 3:
        binary = np.asarray(binary.any(axis=2))
    return binary.astype(np.uint8)
