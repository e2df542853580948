"""Reading images and masks from disk into plain numpy arrays.

Everything that can go wrong with a file on disk (missing, truncated, not an image, too large, a
mask that is not binary) is reported as a :class:`~cracksam.errors.DatasetError` whose message
starts with the file's path, so a user can find and fix the file without a traceback.

* :func:`read_image` -> ``H x W x 3`` ``uint8`` RGB, EXIF orientation applied.
* :func:`read_mask` -> ``H x W`` ``uint8`` with values in ``{0, 1}`` (1 = crack).
* :func:`image_shape` -> ``(H, W)`` from the header only (EXIF orientation applied), for fast checks.
* :func:`decode_image` -> the same as :func:`read_image`, from bytes held in memory (an HTTP upload).

Opening and its errors are in :mod:`cracksam.data.opening`, masks in :mod:`cracksam.data.masks`;
their public names are importable from here too.

The errors are :class:`~cracksam.errors.DatasetError` subclasses that tell the failures apart
(:class:`ImageTooLargeError`, :class:`NotAnImageError`, :class:`CorruptImageError`), so a caller
such as the HTTP service can answer each with its own status without parsing messages.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import IO

import numpy as np
from PIL import Image

from cracksam.data.masks import MaskLevelError, check_mask_threshold, mask_full_scale, read_mask
from cracksam.data.opening import (
    DEFAULT_MAX_PIXELS,
    CorruptImageError,
    ImageTooLargeError,
    NotAnImageError,
    open_path,
    open_source,
    oriented,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "CorruptImageError",
    "ImageTooLargeError",
    "MaskLevelError",
    "NotAnImageError",
    "check_mask_threshold",
    "decode_image",
    "image_shape",
    "mask_full_scale",
    "read_image",
    "read_mask",
]

# Extensions (lower case, with dot) that count as images in a dataset folder.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# EXIF orientations 5..8 are transposes/rotations by 90 degrees: they swap width and height.
_EXIF_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def image_shape(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Return ``(height, width)`` of an image as :func:`read_image` would return it.

    Only the header is read (no pixel decoding), so this is fast but does not detect truncated pixel
    data. The EXIF orientation is taken into account (orientations 5-8 swap width and height).
    """
    with open_path(path, max_pixels) as im:
        width, height = im.size
        orientation = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        if orientation in _SWAPPING_ORIENTATIONS:
            width, height = height, width
        return height, width


def _high_depth_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale a single-channel 16/32-bit or float array to ``uint8`` (shape kept)."""
    if mode == "F":
        # Float images have no standard range: [0, 1] is the usual convention, otherwise assume 0..255.
        data = arr.astype(np.float64)
        finite_max = float(np.nanmax(data)) if data.size else 0.0
        if finite_max <= 1.0:
            data = data * 255.0
        return np.clip(np.nan_to_num(np.round(data)), 0, 255).astype(np.uint8)
    # "I;16*" holds 0..65535; "I" (32-bit) is how Pillow often opens 16-bit PNGs, so treat it as 16 bit.
    # 65535 / 257 = 255 exactly, so full white maps to full white.
    data = np.clip(arr.astype(np.int64), 0, 65535)
    return ((data + 128) // 257).astype(np.uint8)


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to an ``H x W x 3`` ``uint8`` RGB array."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("L", "1"):
        gray = np.asarray(im.convert("L"), dtype=np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F" or mode == "I" or mode.startswith("I;16"):
        gray = _high_depth_to_uint8(np.asarray(im), mode)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "RGBa", "RGBX", "LA", "La", "PA", "P"):
        # Alpha is dropped (not composited): crack photos are opaque and the stored colours are the
        # measurement; compositing would darken any pixel that happens to carry alpha < 255.
        return np.ascontiguousarray(np.asarray(im.convert("RGBA"), dtype=np.uint8)[:, :, :3])
    # CMYK, YCbCr, LAB, HSV, ...: Pillow knows the conversion.
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB.

    Args:
        path: image file (any format Pillow reads).
        max_pixels: refuse images with more pixels than this (checked from the header, before
            decoding); ``None`` disables our check (Pillow's own hard limit still applies).

    Returns:
        ``H x W x 3`` ``uint8`` RGB array, with the EXIF orientation applied. Grayscale is repeated to
        three channels, alpha is dropped, palette/CMYK/YCbCr are converted, 16-bit data is scaled to
        8 bit (value / 257).

    Raises:
        DatasetError: the file is missing, unreadable, truncated or too large (message names it).
    """
    with open_path(path, max_pixels) as im:
        return _rgb_of(im)


def _rgb_of(im: Image.Image) -> np.ndarray:
    """The oriented RGB array of an opened image, owned by the caller (writeable, C-contiguous)."""
    arr = _to_rgb_array(oriented(im))
    # np.asarray on a Pillow image may be read-only; callers (augmentations) expect to own the data.
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = arr.copy()
    return arr


def decode_image(
    data: bytes | IO[bytes],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    name: str = "image",
    formats: Sequence[str] | None = None,
) -> np.ndarray:
    """Decode image bytes held in memory exactly as :func:`read_image` reads a file.

    Args:
        data: the encoded image (the whole file), as bytes or a binary file object positioned at
            its start (an upload spooled to a temporary file, say: no second copy in memory).
        max_pixels: as for :func:`read_image`; checked from the header, before the pixels are decoded.
        name: what messages call the data (an upload's file name, say); never opened as a path.
        formats: Pillow format names to accept (e.g. ``("PNG", "JPEG")``); None accepts every
            format Pillow reads.  A server should pass a list: fewer parsers see untrusted bytes.

    Raises:
        NotAnImageError: empty data, or no (allowed) format recognises it.
        CorruptImageError: a recognised format whose pixel data is truncated or corrupt.
        ImageTooLargeError: more than ``max_pixels`` pixels.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        if not data:
            raise NotAnImageError(f"{name}: no data (0 bytes)")
        source: IO[bytes] = io.BytesIO(data)
    else:
        source = data
    with open_source(source, name, max_pixels, formats) as im:
        return _rgb_of(im)
