"""The config tree of ``cracksam measure``: which masks, the pixel scale, and what is written.

Every option is a key here, reachable from ``--config``, ``CRACKSAM_MEASURE__<KEY>`` variables,
``--set`` and the short flags (:mod:`cracksam.cli.tree`).  The checks that need no file run once,
in ``__post_init__``, whichever way a value came; their messages name the flag.  Light: no numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cracksam.config import help_meta
from cracksam.errors import ConfigError

MIN_LENGTH = 10.0  # px: shorter skeleton branches are noise, not cracks


def parse_points(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """``"x1,y1,x2,y2"`` as two points (``;`` also separates)."""
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ConfigError(f'--ref-points must be four numbers "x1,y1,x2,y2", got {text!r}')
    return (values[0], values[1]), (values[2], values[3])


def check_pixel_scale(mm_per_px: float | None, ref_points: str | None, ref_length_mm: float | None) -> None:
    """One pixel scale at most: ``--mm-per-px``, or ``--ref-points`` with ``--ref-length-mm``
    (shared by ``measure`` and ``report``)."""
    if mm_per_px is not None and (ref_points is not None or ref_length_mm is not None):
        raise ConfigError("--mm-per-px and --ref-points/--ref-length-mm are mutually exclusive: give one scale")
    if (ref_points is None) != (ref_length_mm is None):
        raise ConfigError("--ref-points and --ref-length-mm go together: give both or neither")
    if mm_per_px is not None and (not math.isfinite(mm_per_px) or mm_per_px <= 0):
        raise ConfigError(f"--mm-per-px must be a positive number, got {mm_per_px:g}")
    if ref_points is not None:
        parse_points(ref_points)


@dataclass(frozen=True)
class MeasureConfig:
    """``cracksam measure``: crack length, width and area from binary masks."""

    masks: list[str] = field(default_factory=list, metadata=help_meta(
        "Mask files, folders or glob patterns (the command's MASK arguments replace these)."))
    mm_per_px: float | None = field(default=None, metadata=help_meta("Pixel size in millimetres."))
    ref_points: str | None = field(default=None, metadata=help_meta(
        'Two pixel points "x1,y1,x2,y2" on a reference object (with ref_length_mm).'))
    ref_length_mm: float | None = field(default=None, metadata=help_meta(
        "Real length of the reference object between ref_points (mm)."))
    min_length: float = field(default=MIN_LENGTH, metadata=help_meta("Discard cracks shorter than this (px)."))
    threshold: float | None = field(default=None, metadata=help_meta(
        "Binarise images that are not binary masks: crack above this share of full scale (0.5 = 128 of 255); "
        "None: only binary masks are measured."))
    out: str | None = field(default=None, metadata=help_meta("Folder for the JSON, CSV and PNG outputs."))
    image: str | None = field(default=None, metadata=help_meta(
        "Photo to draw the annotation on (one mask only; same size)."))
    json: bool = field(default=False, metadata=help_meta("Print the JSON report(s) to stdout."))

    def __post_init__(self) -> None:
        check_pixel_scale(self.mm_per_px, self.ref_points, self.ref_length_mm)
        if not math.isfinite(self.min_length) or self.min_length < 0:
            raise ConfigError(f"--min-length must be >= 0 px, got {self.min_length:g}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold must be a fraction in (0, 1) of full scale, got {self.threshold:g}")


__all__ = ["MIN_LENGTH", "MeasureConfig", "check_pixel_scale", "parse_points"]
