"""One image's inspection: the measurement plus each crack's type and severity."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cracksam.inspection.geometry import crack_label_map
from cracksam.inspection.severity import Grade, SeverityScheme, effective_scheme, grade, load_scheme
from cracksam.inspection.types import CRACK_TYPES, CrackClass, TypeRules, classify_cracks
from cracksam.measurement import MeasureResult, measure_mask, result_to_dict

__all__ = ["Inspection", "inspect_mask", "inspection_to_dict", "worst_severity"]


@dataclass(frozen=True)
class Inspection:
    measure: MeasureResult
    classes: list[CrackClass]
    grades: list[Grade]
    scheme: SeverityScheme  # the scheme applied (``pixels`` when a mm scheme had no scale)
    requested_scheme: SeverityScheme
    severity_note: str | None
    rules: TypeRules
    labels: np.ndarray = field(repr=False, compare=False)  # crack id per pixel, 0 elsewhere


def inspect_mask(
    mask: np.ndarray,
    mm_per_px: float | None = None,
    min_length_px: float = 10.0,
    rules: TypeRules | None = None,
    severity: str | SeverityScheme | None = None,
) -> Inspection:
    """Measure, type and grade the cracks of a binary ``mask``.

    ``severity``: a scheme name of :data:`~cracksam.inspection.severity.SCHEMES`, a scheme, or a
    JSON/YAML file; without ``mm_per_px`` a mm scheme falls back to pixel bands (and says so).
    """
    rules = rules or TypeRules()
    requested = load_scheme(severity)
    result = measure_mask(mask, mm_per_px=mm_per_px, min_length_px=min_length_px)
    labels = crack_label_map(mask, result)
    scheme, note = effective_scheme(requested, result.mm_per_px)
    return Inspection(result, classify_cracks(labels, result, rules), [grade(c, scheme) for c in result.cracks],
                      scheme, requested, note, rules, labels)


def worst_severity(ins: Inspection) -> str | None:
    """Label of the highest band any crack of the image reaches (``None`` without cracks)."""
    if not ins.grades:
        return None
    return max(ins.grades, key=lambda g: g.rank).label


def inspection_to_dict(ins: Inspection, source: str | None = None) -> dict[str, Any]:
    """The measurement report of :func:`~cracksam.measurement.result_to_dict` with, per crack,
    ``type``, ``severity`` and the figures behind them, and per image the counts by type and
    severity, the worst severity and the rules used."""
    doc = result_to_dict(ins.measure, source)
    for crack, cls, g in zip(doc["cracks"], ins.classes, ins.grades, strict=True):
        crack.update(
            type=cls.type,
            angle_to_direction_deg=cls.angle_to_direction_deg,
            loops=cls.loops,
            branches_per_100px=cls.branches_per_100px,
            severity=g.label,
            severity_width=round(g.width, 4),
        )
    types = Counter(c.type for c in ins.classes)
    levels = Counter(g.label for g in ins.grades)
    doc["inspection"] = {
        "types": {t: types.get(t, 0) for t in CRACK_TYPES},
        "length_by_type_px": {t: round(sum(c.length_px for c, k in zip(ins.measure.cracks, ins.classes, strict=True)
                                           if k.type == t), 4) for t in CRACK_TYPES},
        "severity": {label: levels.get(label, 0) for label in ins.scheme.labels},
        "worst_severity": worst_severity(ins),
        "severity_scheme": ins.scheme.to_dict(),
        "severity_note": ins.severity_note,
        "type_rules": dict(vars(ins.rules)),
    }
    return doc
