"""One batch of images in, mask files out and one results row per image back.

Every engine (the plain loop and each Ray worker) calls :func:`process_batch`, so their rows and
files are the same.  Output files are the plain ``predict``'s, written by the same function
(:func:`cracksam.survey.outputs.write_outputs`).  A bad image gives an error row and never stops the
batch.
"""

from __future__ import annotations

import time
from typing import Any

from cracksam.errors import CrackSAMError
from cracksam.survey.outputs import ImageOptions

# Errors that belong to one image (unreadable, odd, too large, its output not writable), not to the job.
IMAGE_ERRORS = (CrackSAMError, OSError, ValueError, MemoryError)

#: Columns every row has, in table order; measurement columns follow ``crack_fraction``.
BASE_COLUMNS = ("path", "status", "error", "mask", "width", "height", "crack_pixels", "crack_fraction")
TAIL_COLUMNS = ("read_s", "predict_s", "write_s", "seconds", "model_id", "size_bytes", "mtime_ns", "key")
#: Columns that differ between two runs of the same job (wall-clock timings).
TIMING_COLUMNS = ("read_s", "predict_s", "write_s", "seconds")


def task_of(item: Any, size: int | None, mtime_ns: int | None, key: str) -> dict[str, Any]:
    """What a worker needs for one image: plain values, cheap to ship."""
    return {"index": item.index, "path": item.path, "file": item.file, "stem": item.stem,
            "size_bytes": size, "mtime_ns": mtime_ns, "key": key}


def error_row(task: dict[str, Any], message: str, opts: ImageOptions) -> dict[str, Any]:
    row = _start_row(task, opts)
    row.update(status="error", error=message)
    return row


def _start_row(task: dict[str, Any], opts: ImageOptions) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(BASE_COLUMNS)
    row.update(path=task["path"], status="ok")
    row.update(dict.fromkeys(TAIL_COLUMNS))
    row.update(model_id=opts.model_id, size_bytes=task["size_bytes"], mtime_ns=task["mtime_ns"], key=task["key"],
               read_s=0.0, predict_s=0.0, write_s=0.0)
    return row


def _message(task: dict[str, Any], exc: BaseException) -> str:
    # Our own errors already name the file; others get it added, as the plain predict does.
    if isinstance(exc, CrackSAMError):
        return str(exc)
    return f"{task['path']}: {type(exc).__name__}: {exc}"


def process_batch(predictor: Any, tasks: list[dict[str, Any]], opts: ImageOptions) -> list[dict[str, Any]]:
    """Segment the images of ``tasks`` (decoded here, in the worker), write their outputs, return their rows."""
    from cracksam.data.io import read_image

    rows = [_start_row(t, opts) for t in tasks]
    images: dict[int, Any] = {}
    for i, (task, row) in enumerate(zip(tasks, rows, strict=True)):
        t0 = time.perf_counter()
        try:
            images[i] = read_image(task["file"], max_pixels=opts.max_pixels)
        except IMAGE_ERRORS as exc:
            row.update(status="error", error=_message(task, exc))
        row["read_s"] = time.perf_counter() - t0
    order = list(images)
    t0 = time.perf_counter()
    try:
        batch = predictor.predict([images[i] for i in order]) if order else []
        predictions = dict(zip(order, batch, strict=True))
    except IMAGE_ERRORS:
        predictions = {}  # one image spoilt the batch: run them one by one to find it
        for i in order:
            try:
                predictions[i] = predictor.predict_one(images[i])
            except IMAGE_ERRORS as exc:
                rows[i].update(status="error", error=_message(tasks[i], exc))
    per_image = (time.perf_counter() - t0) / max(1, len(order))
    for i, pred in predictions.items():
        rows[i]["predict_s"] = per_image
        t1 = time.perf_counter()
        try:
            rows[i].update(_write_outputs(images[i], pred, tasks[i]["stem"], opts))
        except IMAGE_ERRORS as exc:
            rows[i].update(status="error", error=_message(tasks[i], exc), mask=None)
        rows[i]["write_s"] = time.perf_counter() - t1
    for row in rows:
        row["seconds"] = row["read_s"] + row["predict_s"] + row["write_s"]
        for k in TIMING_COLUMNS:
            row[k] = round(row[k], 4)
    return rows


def _write_outputs(image: Any, pred: Any, stem: str, opts: ImageOptions) -> dict[str, Any]:
    """The plain ``predict``'s files for one image; returns the row's values (measurement columns
    flattened: its totals, then ``mm_per_px``, ``resolution_note``, ``measure_report``)."""
    from cracksam.survey.outputs import write_outputs

    values = write_outputs(image, pred, stem, opts, {}, [])
    m = values.pop("measurement", None)
    if m is not None:
        values.update(m["totals"])
        values.update(mm_per_px=m["mm_per_px"], resolution_note=m["resolution_note"], measure_report=m["report"])
    return values


__all__ = ["BASE_COLUMNS", "IMAGE_ERRORS", "TAIL_COLUMNS", "TIMING_COLUMNS", "ImageOptions", "error_row",
           "process_batch", "task_of"]
