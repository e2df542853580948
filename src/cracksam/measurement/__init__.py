"""Crack measurement: length, width, area and orientation of the cracks of a binary mask.

``measure_mask`` does the geometry (see :mod:`cracksam.measurement.measure` for the
conventions), ``write_json`` / ``write_csv`` / ``write_summary_csv`` the reports and
``render_annotation`` the picture; ``cracksam measure`` wires them to files.
"""

from cracksam.data.io import read_image  # the one image reader of the project
from cracksam.measurement.io import read_binary_mask, write_png
from cracksam.measurement.measure import (
    Crack,
    MeasurementError,
    MeasureResult,
    MeasureTotals,
    measure_mask,
    resolution_note,
    scale_from_points,
)
from cracksam.measurement.render import render_annotation
from cracksam.measurement.report import (
    result_to_dict,
    summary_row,
    write_csv,
    write_json,
    write_summary_csv,
)

__all__ = [
    "Crack",
    "MeasureResult",
    "MeasureTotals",
    "MeasurementError",
    "measure_mask",
    "read_image",
    "read_binary_mask",
    "render_annotation",
    "resolution_note",
    "result_to_dict",
    "scale_from_points",
    "summary_row",
    "write_csv",
    "write_json",
    "write_png",
    "write_summary_csv",
]
