"""The config tree of ``cracksam report``: the folder of results, the pixel scale, the crack-type
rules and the severity scheme.

Every option is a key here, reachable from ``--config``, ``CRACKSAM_REPORT__<KEY>`` variables,
``--set`` and the short flags (:mod:`cracksam.cli.tree`).  The checks that need no file run once,
in ``__post_init__``; the severity scheme (maybe a file) is loaded when the command runs.  The keys
are the flags' (``direction``, ``tolerance``), so the messages name the flag as before.  Light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cracksam.cli.measure_config import MIN_LENGTH, check_pixel_scale
from cracksam.config import help_meta
from cracksam.errors import ConfigError


@dataclass(frozen=True)
class ReportConfig:
    """``cracksam report``: a folder of results to an offline HTML report, COCO, GeoJSON and CSV."""

    folder: str | None = field(default=None, metadata=help_meta(
        "Folder of results (predict --out) or of masks; the FOLDER argument."))
    out: str | None = field(default=None, metadata=help_meta("Output folder (None: FOLDER/report)."))
    images: str | None = field(default=None, metadata=help_meta("Folder of the photos (matched by file stem)."))
    mm_per_px: float | None = field(default=None, metadata=help_meta("Pixel size in millimetres."))
    ref_points: str | None = field(default=None, metadata=help_meta(
        'Two pixel points "x1,y1,x2,y2" on a reference object (with ref_length_mm).'))
    ref_length_mm: float | None = field(default=None, metadata=help_meta("Real length between ref_points (mm)."))
    min_length: float = field(default=MIN_LENGTH, metadata=help_meta("Discard cracks shorter than this (px)."))
    direction: float = field(default=90.0, metadata=help_meta(
        "Travel direction, degrees counter-clockwise from the image's horizontal (90 = up the image)."))
    tolerance: float = field(default=30.0, metadata=help_meta(
        "Longitudinal/transverse within this many degrees, else diagonal."))
    short_length: float = field(default=50.0, metadata=help_meta(
        "Isolated cracks shorter than this (px) are 'isolated_short'."))
    severity: str = field(default="astm-d6433", metadata=help_meta(
        "Severity scheme: astm-d6433, concrete, pixels, or a JSON/YAML file."))
    json: bool = field(default=False, metadata=help_meta("Print the survey summary as JSON."))
    progress: bool = field(default=True, metadata=help_meta("Show a progress bar."))

    def __post_init__(self) -> None:
        check_pixel_scale(self.mm_per_px, self.ref_points, self.ref_length_mm)
        if not math.isfinite(self.min_length) or self.min_length < 0:
            raise ConfigError(f"--min-length must be >= 0 px, got {self.min_length:g}")
        for option, value in (("--direction", self.direction), ("--tolerance", self.tolerance),
                              ("--short-length", self.short_length)):
            if not math.isfinite(value):
                raise ConfigError(f"{option} must be a finite number, got {value}")
        if not 0 <= self.tolerance <= 45:
            raise ConfigError(f"--tolerance must be between 0 and 45 degrees, got {self.tolerance:g}")
        if self.short_length < 0:
            raise ConfigError(f"--short-length must be >= 0 px, got {self.short_length:g}")


__all__ = ["ReportConfig"]
