"""The measurement files of one predicted mask, as ``cracksam predict --measure`` and the survey
write them (one implementation, so the two stay identical)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cracksam.measurement.io import write_png
from cracksam.measurement.measure import measure_mask
from cracksam.measurement.render import render_annotation
from cracksam.measurement.report import result_to_dict, write_csv, write_json


def write_measurement(mask: np.ndarray, image: np.ndarray, out: Path, stem: str, mm_per_px: float | None,
                      min_length: float, written: list[str]) -> dict[str, Any]:
    """Measure ``mask`` and write ``<stem>_measure.json``, ``<stem>_cracks.csv`` and
    ``<stem>_measure.png`` (annotated over ``image``) into ``out``; their paths are appended to
    ``written``.  Returns the totals, scale and resolution note, and the report's name."""
    result = measure_mask(mask, mm_per_px=mm_per_px, min_length_px=min_length)
    write_json(result, out / f"{stem}_measure.json", source=stem)
    written.append(str(out / f"{stem}_measure.json"))
    write_csv(result, out / f"{stem}_cracks.csv", source=stem)
    written.append(str(out / f"{stem}_cracks.csv"))
    write_png(out / f"{stem}_measure.png", render_annotation(image, result))
    written.append(str(out / f"{stem}_measure.png"))
    doc = result_to_dict(result, source=stem)
    return {k: doc[k] for k in ("totals", "mm_per_px", "resolution_note")} | {"report": f"{stem}_measure.json"}
