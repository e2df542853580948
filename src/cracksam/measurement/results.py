"""What a measurement returns (:class:`Crack`, :class:`MeasureTotals`, :class:`MeasureResult`), the
conversion to millimetres, and the error raised for invalid measurement inputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from cracksam.errors import CrackSAMError

#: Widths below this many pixels are reported as resolution-bound.
RESOLUTION_LIMIT_PX = 2.0


class MeasurementError(CrackSAMError):
    """A mask, an image or a scale given to the measurement is invalid."""


@dataclass(frozen=True)
class Crack:
    """One connected crack.  ``*_mm`` fields are ``None`` when no scale is known."""

    id: int
    length_px: float
    mean_width_px: float
    median_width_px: float
    max_width_px: float
    area_px: int
    bbox: tuple[int, int, int, int]  # x, y, w, h (pixels, x to the right, y down)
    orientation_deg: float
    widest_point: tuple[int, int]  # x, y of the skeleton pixel where the width is largest
    n_branches: int = 1
    length_mm: float | None = None
    mean_width_mm: float | None = None
    median_width_mm: float | None = None
    max_width_mm: float | None = None
    area_mm2: float | None = None


@dataclass(frozen=True)
class MeasureTotals:
    """Per-image totals over the cracks that passed the minimum-length filter."""

    n_cracks: int
    n_discarded: int  # connected components shorter than ``min_length_px``
    total_length_px: float
    total_area_px: int
    mean_width_px: float  # length-weighted mean of the cracks' mean widths (0 without cracks)
    max_width_px: float  # 0 without cracks
    total_length_mm: float | None = None
    total_area_mm2: float | None = None
    mean_width_mm: float | None = None
    max_width_mm: float | None = None


@dataclass(frozen=True)
class MeasureResult:
    cracks: list[Crack]
    totals: MeasureTotals
    mm_per_px: float | None
    image_size: tuple[int, int]  # width, height
    min_length_px: float = 10.0
    #: Width (px) at the skeleton pixels of the kept cracks, 0 elsewhere; used for drawing.
    width_map: np.ndarray | None = field(default=None, repr=False, compare=False)


def resolution_note(mm_per_px: float | None) -> str:
    """The caveat that goes with every report: widths near 1-2 px are resolution-bound."""
    lim = RESOLUTION_LIMIT_PX
    if mm_per_px is None:
        return (
            f"Pixel size unknown (no scale given): figures are in pixels only. Widths below ~{lim:g} px "
            "are resolution-bound and a width is uncertain by about +-1 px."
        )
    return (
        f"Pixel size {mm_per_px:.4g} mm. Widths below ~{lim:g} px ({lim * mm_per_px:.3g} mm) are "
        f"resolution-bound and a width is uncertain by about +-1 px (+-{mm_per_px:.3g} mm); "
        "a finer pixel size is needed to resolve thinner cracks."
    )


def with_mm(crack: Crack, scale: float | None) -> Crack:
    """``crack`` with its millimetre fields filled in (unchanged when ``scale`` is None)."""
    if scale is None:
        return crack
    return replace(
        crack,
        length_mm=crack.length_px * scale,
        mean_width_mm=crack.mean_width_px * scale,
        median_width_mm=crack.median_width_px * scale,
        max_width_mm=crack.max_width_px * scale,
        area_mm2=crack.area_px * scale * scale,
    )


def build_result(
    cracks: list[Crack],
    discarded: int,
    scale: float | None,
    size: tuple[int, int],
    min_length_px: float,
    width_map: np.ndarray,
) -> MeasureResult:
    """The result of an image: its cracks and their totals (in mm too when ``scale`` is known)."""
    total_length = float(sum(c.length_px for c in cracks))
    total_area = int(sum(c.area_px for c in cracks))
    mean_width = float(sum(c.mean_width_px * c.length_px for c in cracks) / total_length) if total_length > 0 else 0.0
    max_width = float(max((c.max_width_px for c in cracks), default=0.0))
    totals = MeasureTotals(
        n_cracks=len(cracks),
        n_discarded=discarded,
        total_length_px=total_length,
        total_area_px=total_area,
        mean_width_px=mean_width,
        max_width_px=max_width,
    )
    if scale is not None:
        totals = replace(
            totals,
            total_length_mm=total_length * scale,
            total_area_mm2=total_area * scale * scale,
            mean_width_mm=mean_width * scale,
            max_width_mm=max_width * scale,
        )
    return MeasureResult(
        cracks=cracks,
        totals=totals,
        mm_per_px=scale,
        image_size=size,
        min_length_px=min_length_px,
        width_map=width_map,
    )
