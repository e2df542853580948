"""What ``cracksam predict`` writes for one photo, whichever loop runs it: the plain command's
(:mod:`cracksam.cli.predict`) and every survey engine's (:func:`cracksam.survey.rows.process_batch`)
call :func:`write_outputs`, so their files are the same bytes.

Per photo, into the output folder: ``<stem>_mask.png`` (0/255, the photo's size) and, on request,
``<stem>_overlay.png`` (:func:`~cracksam.inspection.overlay.crack_overlay`), ``<stem>_prob.png``
(the crack probability, 0-255) and the measurement files
(:func:`~cracksam.measurement.files.write_measurement`), each written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ImageOptions:
    """What is written per image (the ``predict`` command's options)."""

    out: str
    threshold: float = 0.5
    overlay: bool = False
    prob: bool = False
    measure: bool = False
    mm_per_px: float | None = None
    min_length: float = 10.0
    max_pixels: int | None = None
    model_id: str = "model"


def write_outputs(image: Any, pred: Any, stem: str, opts: ImageOptions, row: dict[str, Any],
                  written: list[str]) -> dict[str, Any]:
    """Write the files of one photo (RGB ``image``, its :class:`~cracksam.inference.predictor.Prediction`
    ``pred``) named after ``stem``; returns ``row``, updated as the files are written: ``mask``,
    ``width``, ``height``, ``crack_pixels``, ``crack_fraction`` once the mask is on disk, then
    ``measurement`` (totals, scale, report name) with ``opts.measure``.  Each file's path is appended
    to ``written`` when it is complete, so a failure part-way (a full disk) leaves both saying what
    is there."""
    import numpy as np

    from cracksam._files import atomic_write_bytes, encode_mask_png, encode_png
    from cracksam.inspection.overlay import crack_overlay
    from cracksam.measurement.files import write_measurement

    def put(target: Path, data: bytes) -> None:
        atomic_write_bytes(target, data)
        written.append(str(target))

    out = Path(opts.out)
    mask = pred.mask(opts.threshold)
    h, w = mask.shape
    crack = int(mask.sum())
    put(out / f"{stem}_mask.png", encode_mask_png(mask))
    row.update(mask=str(out / f"{stem}_mask.png"), width=w, height=h, crack_pixels=crack,
               crack_fraction=crack / (h * w))
    if opts.overlay:
        put(out / f"{stem}_overlay.png", encode_png(crack_overlay(image, mask)))
    if opts.prob:
        put(out / f"{stem}_prob.png", encode_png(np.round(pred.prob * 255).astype(np.uint8)))
    if opts.measure:
        row["measurement"] = write_measurement(mask, image, out, stem, opts.mm_per_px, opts.min_length, written)
    return row


__all__ = ["ImageOptions", "write_outputs"]
