"""Reading masks for measurement, with errors that name the file, and writing its pictures.

A mask is read by the project's one mask reader, :func:`cracksam.data.masks.read_mask` (two levels
with 0 for background unless a threshold is given; EXIF orientation, palette indices and alpha
handled as for training data).  :func:`read_binary_mask` wraps it: its errors become
:class:`MeasurementError` in the words of ``cracksam measure`` (whose option is ``--threshold``),
which the inspection report (:mod:`cracksam.inspection.report_folder`) also relies on to tell a
photo ("not a binary mask") from a mask, and the mask a bool array.
"""

from __future__ import annotations

import os

import numpy as np

from cracksam._files import write_png_atomic
from cracksam.data import masks
from cracksam.data.opening import CorruptImageError, NotAnImageError
from cracksam.errors import DatasetError
from cracksam.measurement.measure import MeasurementError

__all__ = ["read_binary_mask", "write_png"]


def read_binary_mask(path: str | os.PathLike[str], threshold: float | None = None) -> np.ndarray:
    """Binary crack mask (H x W, bool) from an image file.

    Any format the project reads (PNG, TIFF, BMP, JPEG, ...), 8 or 16 bit, 0/1 or 0/255: a pixel is
    crack when any colour channel is > 0.  An alpha channel is ignored unless the colour channels
    are all zero, in which case the alpha channel is the mask.

    Without ``threshold`` the image must be a binary mask (0 for background and one other value or
    colour): a photo, an overlay or a probability map would otherwise be measured as one huge
    "crack".  ``threshold`` (a fraction in (0, 1) of full scale: 255 for 8 bit, 65535 for 16 bit)
    binarises any image instead: crack where a channel is above it.
    """
    try:
        mask = masks.read_mask(path, threshold=threshold)
    except masks.MaskLevelError:
        raise MeasurementError(
            f"{path}: not a binary mask (more than two grey levels: a photo, an overlay or a probability map?); "
            "give --threshold FRACTION to binarise it (0.5 = half of full scale)"
        ) from None
    except (NotAnImageError, CorruptImageError):
        raise MeasurementError(f"{path}: not a readable image (corrupt file or unsupported format)") from None
    except DatasetError as exc:  # missing, a folder, empty, too large: the reader's own words
        raise MeasurementError(str(exc)) from None
    return mask.astype(bool)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an RGB (or grey) uint8 image as PNG, atomically."""
    write_png_atomic(path, rgb)
