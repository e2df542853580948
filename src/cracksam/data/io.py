"""Reading images and masks from disk into plain numpy arrays.

Everything that can go wrong with a file on disk (missing, truncated, not an image, too large, a
mask that is not binary) is reported as a :class:`~cracksam.errors.DatasetError` whose message
starts with the file's path, so a user can find and fix the file without a traceback.

* :func:`read_image` -> ``H x W x 3`` ``uint8`` RGB, EXIF orientation applied.
* :func:`read_mask` -> ``H x W`` ``uint8`` with values in ``{0, 1}`` (1 = crack).
* :func:`image_shape` -> ``(H, W)`` from the header only (EXIF orientation applied), for fast checks.
* :func:`decode_image` -> the same as :func:`read_image`, from bytes held in memory (an HTTP upload).

The errors are :class:`~cracksam.errors.DatasetError` subclasses that tell the failures apart
(:class:`ImageTooLargeError`, :class:`NotAnImageError`, :class:`CorruptImageError`), so a caller
such as the HTTP service can answer each with its own status without parsing messages.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps

from cracksam.errors import ConfigError, DatasetError

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
    "read_image",
    "read_mask",
]

# Same value as Pillow's hard decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS), so by default we
# refuse exactly what Pillow would refuse, but with a message naming the file and its size.
DEFAULT_MAX_PIXELS = 178_956_970

# Extensions (lower case, with dot) that count as images in a dataset folder.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# EXIF orientations 5..8 are transposes/rotations by 90 degrees: they swap width and height.
_EXIF_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


class MaskLevelError(DatasetError):
    """A mask has more than two distinct values (or two that do not include 0 for background)."""


class ImageTooLargeError(DatasetError):
    """The image has more pixels than allowed (known from its header, before decoding)."""


class NotAnImageError(DatasetError):
    """The data is not in any image format that can be read (or not in one of those allowed)."""


class CorruptImageError(DatasetError):
    """The header names an image format but the pixel data cannot be decoded (truncated, corrupt)."""


@contextmanager
def _open_source(
    source: Path | IO[bytes], name: str, max_pixels: int | None, formats: Sequence[str] | None = None
) -> Iterator[Image.Image]:
    """Open ``source`` lazily with Pillow, checking its pixel count from the header before decoding.

    Every decoding error inside the ``with`` block is turned into a ``DatasetError`` subclass whose
    message starts with ``name``.  ``formats`` limits the Pillow plugins tried (None: all).
    """
    identified = False
    try:
        # Our own ``max_pixels`` check replaces Pillow's warning; Pillow's hard limit (an error) is
        # converted below so it also names the file.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=None if formats is None else list(formats)) as im:
                identified = True
                width, height = im.size
                if max_pixels is not None and width * height > max_pixels:
                    raise ImageTooLargeError(
                        f"{name}: image is too large ({width}x{height} = {width * height} pixels, "
                        f"limit {max_pixels})"
                    )
                yield im
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{name}: file not found") from None
    except Image.DecompressionBombError as exc:
        # Pillow's own hard limit (2x MAX_IMAGE_PIXELS) tripped first; quote the caller's limit, not Pillow's.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{found.group(1)} pixels" if found else "more pixels than Pillow opens"
        limit = f"limit {max_pixels}" if max_pixels is not None else f"limit {2 * (Image.MAX_IMAGE_PIXELS or 0)}"
        raise ImageTooLargeError(f"{name}: image is too large ({size}, {limit})") from None
    except Exception as exc:  # noqa: BLE001
        # Pillow's plugins raise many types for corrupt data (OSError, SyntaxError, ValueError,
        # struct.error, IndexError, ...); all of them mean "this file cannot be read".
        kind = CorruptImageError if identified else NotAnImageError
        text = str(exc)
        if not isinstance(source, Path):  # Pillow names the file object: "<_io.BytesIO object at 0x...>"
            text = text.replace(repr(source), "data")
        raise kind(f"{name}: cannot read image ({type(exc).__name__}: {text})") from None


def _open(path: str | os.PathLike[str], max_pixels: int | None) -> AbstractContextManager[Image.Image]:
    """:func:`_open_source` for a file on disk, with its path in every message."""
    path = Path(path)
    return _open_source(path, str(path), max_pixels)


def _oriented(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag (phones store portrait photos as rotated landscape pixels)."""
    # exif_transpose decodes the pixels, so truncated files fail here (inside ``_open``'s handler).
    im.load()
    out = ImageOps.exif_transpose(im)
    return im if out is None else out


def image_shape(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Return ``(height, width)`` of an image as :func:`read_image` would return it.

    Only the header is read (no pixel decoding), so this is fast but does not detect truncated pixel
    data. The EXIF orientation is taken into account (orientations 5-8 swap width and height).
    """
    with _open(path, max_pixels) as im:
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
    with _open(path, max_pixels) as im:
        return _rgb_of(im)


def _rgb_of(im: Image.Image) -> np.ndarray:
    """The oriented RGB array of an opened image, owned by the caller (writeable, C-contiguous)."""
    arr = _to_rgb_array(_oriented(im))
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
    with _open_source(source, name, max_pixels, formats) as im:
        return _rgb_of(im)


def _mask_values(im: Image.Image) -> np.ndarray:
    """Pixel values of a mask: ``H x W`` or ``H x W x C`` (alpha removed), any integer dtype."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=np.uint8)
    if mode == "P":
        # Palette masks are label maps (VOC style): the index is the label, the colour only a display.
        return np.asarray(im)
    if mode in ("RGBA", "RGBX", "RGBa"):
        return np.asarray(im.convert("RGBA"))[:, :, :3]
    if mode in ("LA", "La", "PA"):
        return np.asarray(im)[:, :, 0]
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


def read_mask(
    path: str | os.PathLike[str],
    strict: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
) -> np.ndarray:
    """Read a binary crack mask.

    Accepted encodings: 0/255 or 0/1 (or 0/any value), single channel, RGB(A) or palette.
    A pixel is crack (1) when any channel is non-zero.

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
        DatasetError: unreadable/too-large file; :class:`MaskLevelError` (a ``DatasetError``) for a
            mask with values other than two levels when ``strict``.
    """
    with _open(path, max_pixels) as im:
        values = _mask_values(_oriented(im))
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
