"""Measurement reports: JSON per image, CSV per crack, and a per-image summary CSV.

Files written by the CLI for a mask ``<stem>.png`` in ``--out DIR``:

* ``<stem>.json`` -- :func:`result_to_dict`: image size, ``mm_per_px`` (or ``null``), the
  ``resolution_note``, the conventions used, per-image ``totals`` and the list of ``cracks``.
* ``<stem>_cracks.csv`` -- :func:`write_csv`: one row per crack, no totals row (so it loads as a
  clean table); ``*_mm`` columns are empty when no scale is known.
* ``summary.csv`` -- :func:`write_summary_csv`: one row per image with its totals (images that
  failed have their ``error`` column filled and the figures empty).

Floats are rounded to 4 decimals in the files; ``mm_per_px`` is written unrounded.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from typing import Any

from cracksam.config import atomic_write_text
from cracksam.measurement.measure import Crack, MeasureResult, resolution_note

__all__ = [
    "CRACK_COLUMNS",
    "SUMMARY_COLUMNS",
    "crack_row",
    "result_to_dict",
    "summary_row",
    "write_csv",
    "write_json",
    "write_summary_csv",
]

CONVENTIONS = {
    "length": "skeleton path length (coordinates smoothed, sigma 2 px) plus the local half-width at each free end",
    "width": "distance from the skeleton to the background on both sides: Euclidean distance "
    "transform at half-pixel resolution, ridge value; exact for axis-aligned strokes",
    "orientation_deg": "principal axis of the skeleton, 0 = horizontal, counter-clockwise, (-90, 90]",
    "bbox": "x, y, w, h in pixels (x right, y down)",
}

CRACK_COLUMNS = [
    "image",
    "id",
    "length_px",
    "mean_width_px",
    "median_width_px",
    "max_width_px",
    "area_px",
    "bbox_x",
    "bbox_y",
    "bbox_w",
    "bbox_h",
    "orientation_deg",
    "widest_x",
    "widest_y",
    "n_branches",
    "length_mm",
    "mean_width_mm",
    "median_width_mm",
    "max_width_mm",
    "area_mm2",
]

SUMMARY_COLUMNS = [
    "image",
    "width",
    "height",
    "mm_per_px",
    "n_cracks",
    "n_discarded",
    "total_length_px",
    "total_area_px",
    "mean_width_px",
    "max_width_px",
    "total_length_mm",
    "total_area_mm2",
    "mean_width_mm",
    "max_width_mm",
    "error",
]


def _r(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return value


def _crack_dict(crack: Crack) -> dict[str, Any]:
    x, y, w, h = crack.bbox
    return {
        "id": crack.id,
        "length_px": _r(crack.length_px),
        "mean_width_px": _r(crack.mean_width_px),
        "median_width_px": _r(crack.median_width_px),
        "max_width_px": _r(crack.max_width_px),
        "area_px": crack.area_px,
        "bbox": {"x": x, "y": y, "w": w, "h": h},
        "orientation_deg": _r(crack.orientation_deg),
        "widest_point": {"x": crack.widest_point[0], "y": crack.widest_point[1]},
        "n_branches": crack.n_branches,
        "length_mm": _r(crack.length_mm),
        "mean_width_mm": _r(crack.mean_width_mm),
        "median_width_mm": _r(crack.median_width_mm),
        "max_width_mm": _r(crack.max_width_mm),
        "area_mm2": _r(crack.area_mm2),
    }


def result_to_dict(result: MeasureResult, source: str | None = None) -> dict[str, Any]:
    """The JSON-ready report of one image."""
    width, height = result.image_size
    totals = {k: _r(v) for k, v in vars(result.totals).items()}
    return {
        "image": source,
        "image_size": {"width": width, "height": height},
        "mm_per_px": result.mm_per_px,
        "min_length_px": _r(result.min_length_px),
        "resolution_note": resolution_note(result.mm_per_px),
        "conventions": dict(CONVENTIONS),
        "totals": totals,
        "cracks": [_crack_dict(c) for c in result.cracks],
    }


def write_json(result: MeasureResult, path: str | os.PathLike[str], source: str | None = None) -> None:
    atomic_write_text(path, json.dumps(result_to_dict(result, source), indent=2) + "\n")


def crack_row(crack: Crack, source: str | None = None) -> dict[str, Any]:
    x, y, w, h = crack.bbox
    row = {
        "image": source or "",
        "id": crack.id,
        "length_px": crack.length_px,
        "mean_width_px": crack.mean_width_px,
        "median_width_px": crack.median_width_px,
        "max_width_px": crack.max_width_px,
        "area_px": crack.area_px,
        "bbox_x": x,
        "bbox_y": y,
        "bbox_w": w,
        "bbox_h": h,
        "orientation_deg": crack.orientation_deg,
        "widest_x": crack.widest_point[0],
        "widest_y": crack.widest_point[1],
        "n_branches": crack.n_branches,
        "length_mm": crack.length_mm,
        "mean_width_mm": crack.mean_width_mm,
        "median_width_mm": crack.median_width_mm,
        "max_width_mm": crack.max_width_mm,
        "area_mm2": crack.area_mm2,
    }
    return {k: ("" if v is None else _r(v)) for k, v in row.items()}


def _csv_text(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(result: MeasureResult, path: str | os.PathLike[str], source: str | None = None) -> None:
    """One row per crack (columns :data:`CRACK_COLUMNS`); a header only when there is no crack."""
    atomic_write_text(path, _csv_text(CRACK_COLUMNS, (crack_row(c, source) for c in result.cracks)))


def summary_row(source: str, result: MeasureResult | None, error: str | None = None) -> dict[str, Any]:
    """One row of ``summary.csv``: the image's totals, or only its ``error``."""
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, "")
    row["image"] = source
    if result is not None:
        width, height = result.image_size
        row.update(width=width, height=height, mm_per_px=result.mm_per_px)
        row.update(vars(result.totals))
    if error:
        row["error"] = error
    return {k: ("" if v is None else v if k == "mm_per_px" else _r(v)) for k, v in row.items()}


def write_summary_csv(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows made by :func:`summary_row` (columns :data:`SUMMARY_COLUMNS`)."""
    atomic_write_text(path, _csv_text(SUMMARY_COLUMNS, rows))
