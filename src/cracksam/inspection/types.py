"""Crack types from the mask and its skeleton: the rules, in the order they are tried.

1. **network** (alligator / block cracking): the crack encloses at least ``network_min_loops``
   closed loops (background regions of at least ``loop_min_area_px`` pixels), *or* it has at least
   ``network_min_branches`` skeleton branches at a density of at least
   ``network_branches_per_100px`` branches per 100 px of crack length (a dense tree of branches
   that does not quite close).
2. **isolated_short**: shorter than ``short_length_px`` (or ``short_length_mm`` when the pixel size
   is known and that limit is set) *and* no other crack within ``isolation_gap_px`` pixels.
3. by orientation: the angle between the crack's principal axis (``Crack.orientation_deg``) and
   the reference direction ``direction_deg`` (travel direction of the survey; both counter-clockwise
   from the image's horizontal axis), folded to 0-90 degrees:

   * **longitudinal** -- within ``tolerance_deg`` of the direction,
   * **transverse** -- within ``tolerance_deg`` of the perpendicular,
   * **diagonal** -- in between.

The default direction is the image's vertical axis (90 degrees): survey cameras on a vehicle
(down-looking or forward-looking) see the road run up the image.  A horizontal crack is then
transverse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from cracksam.errors import ConfigError
from cracksam.inspection.geometry import component, count_loops
from cracksam.measurement import Crack, MeasureResult

__all__ = ["CRACK_TYPES", "CrackClass", "TypeRules", "angle_to_direction", "classify_cracks"]

CRACK_TYPES = ("longitudinal", "transverse", "diagonal", "network", "isolated_short")


@dataclass(frozen=True)
class TypeRules:
    direction_deg: float = 90.0
    tolerance_deg: float = 30.0
    network_min_loops: int = 2
    loop_min_area_px: int = 16
    network_min_branches: int = 8
    network_branches_per_100px: float = 3.0
    short_length_px: float = 50.0
    short_length_mm: float | None = None
    isolation_gap_px: float = 20.0

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, what: str) -> None:
            value = getattr(self, name)
            if not ok:
                raise ConfigError(f"{name.replace('_', '-')} must be {what}, got {value!r}")

        for name in ("direction_deg", "tolerance_deg", "network_branches_per_100px", "short_length_px",
                     "isolation_gap_px"):
            if not isinstance(getattr(self, name), (int, float)) or not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite number, got {getattr(self, name)!r}")
        check("tolerance_deg", 0 <= self.tolerance_deg <= 45, "between 0 and 45 degrees")
        check("network_min_loops", self.network_min_loops >= 1, ">= 1")
        check("loop_min_area_px", self.loop_min_area_px >= 1, ">= 1")
        check("network_min_branches", self.network_min_branches >= 2, ">= 2")
        check("short_length_px", self.short_length_px >= 0, ">= 0")
        check("isolation_gap_px", self.isolation_gap_px >= 0, ">= 0")
        if self.short_length_mm is not None:
            check("short_length_mm", math.isfinite(self.short_length_mm) and self.short_length_mm >= 0, ">= 0")


@dataclass(frozen=True)
class CrackClass:
    type: str
    angle_to_direction_deg: float  # 0 = along the reference direction, 90 = across it
    loops: int
    branches_per_100px: float
    isolated: bool


def angle_to_direction(orientation_deg: float, direction_deg: float) -> float:
    """Unsigned angle between two undirected lines, degrees in [0, 90]."""
    d = (orientation_deg - direction_deg) % 180.0
    return float(min(d, 180.0 - d))


def _isolated(labels: np.ndarray, crack: Crack, gap: float) -> bool:
    """No pixel of another crack within ``gap`` px of this one (only the crack's window is looked at)."""
    pad = int(math.ceil(gap))
    comp, x0, y0 = component(labels, crack.id, crack.bbox, pad)
    if pad == 0:
        return True
    window = labels[y0 : y0 + comp.shape[0], x0 : x0 + comp.shape[1]]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1))
    near = cv2.dilate(comp.astype(np.uint8), kernel).astype(bool)
    others = (window != 0) & (window != crack.id)
    return not bool(np.any(near & others))


def classify_cracks(labels: np.ndarray, result: MeasureResult, rules: TypeRules | None = None) -> list[CrackClass]:
    """One :class:`CrackClass` per crack of ``result``; ``labels`` from :func:`crack_label_map`."""
    rules = rules or TypeRules()
    out = []
    for crack in result.cracks:
        comp, _, _ = component(labels, crack.id, crack.bbox)
        loops = count_loops(comp, rules.loop_min_area_px)
        density = 100.0 * crack.n_branches / crack.length_px if crack.length_px > 0 else 0.0
        angle = angle_to_direction(crack.orientation_deg, rules.direction_deg)
        if rules.short_length_mm is not None and crack.length_mm is not None:
            short = crack.length_mm < rules.short_length_mm
        else:
            short = crack.length_px < rules.short_length_px
        isolated = _isolated(labels, crack, rules.isolation_gap_px)
        if loops >= rules.network_min_loops or (
            crack.n_branches >= rules.network_min_branches and density >= rules.network_branches_per_100px
        ):
            kind = "network"
        elif short and isolated:
            kind = "isolated_short"
        elif angle <= rules.tolerance_deg:
            kind = "longitudinal"
        elif angle >= 90.0 - rules.tolerance_deg:
            kind = "transverse"
        else:
            kind = "diagonal"
        out.append(CrackClass(kind, round(angle, 4), loops, round(density, 4), isolated))
    return out
