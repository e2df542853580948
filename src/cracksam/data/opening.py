"""Opening an image with Pillow the one way every reader of the project does: the pixel count
checked from the header before decoding, every failure turned into a
:class:`~cracksam.errors.DatasetError` subclass whose message starts with the file's name, and the
EXIF orientation applied.  :mod:`cracksam.data.io` (images) and :mod:`cracksam.data.masks` build
on it."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps

from cracksam.errors import DatasetError

# Same value as Pillow's hard decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS), so by default we
# refuse exactly what Pillow would refuse, but with a message naming the file and its size.
DEFAULT_MAX_PIXELS = 178_956_970


class ImageTooLargeError(DatasetError):
    """The image has more pixels than allowed (known from its header, before decoding)."""


class NotAnImageError(DatasetError):
    """The data is not in any image format that can be read (or not in one of those allowed)."""


class CorruptImageError(DatasetError):
    """The header names an image format but the pixel data cannot be decoded (truncated, corrupt)."""


@contextmanager
def open_source(
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


def open_path(path: str | os.PathLike[str], max_pixels: int | None) -> AbstractContextManager[Image.Image]:
    """:func:`open_source` for a file on disk, with its path in every message."""
    path = Path(path)
    return open_source(path, str(path), max_pixels)


def oriented(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag (phones store portrait photos as rotated landscape pixels)."""
    # exif_transpose decodes the pixels, so truncated files fail here (inside ``open_source``'s handler).
    im.load()
    out = ImageOps.exif_transpose(im)
    return im if out is None else out
