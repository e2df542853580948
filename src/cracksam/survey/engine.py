"""A survey job: what is left to do, the rows as they come back, the table kept consistent.

The engines differ only in where :func:`~cracksam.survey.rows.process_batch` runs: here, in this
process (``plain``), or in a pool of Ray actors (``ray``, :mod:`cracksam.survey.ray_engine`).  The
driver (this process) decides what is pending from the table's keys, writes the table parts as
rows arrive and, on Ctrl-C, writes what has come back before it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cracksam.errors import InvalidValueError
from cracksam.inference.options import PredictOptions
from cracksam.survey.manifest import Inputs, done_key, file_stat
from cracksam.survey.outputs import ImageOptions
from cracksam.survey.rows import process_batch, task_of
from cracksam.survey.table import ResultsTable, check_carried_names

ENGINES = ("plain", "ray")


@dataclass
class SurveyJob:
    """Everything a run needs; the same job run again continues where the last run stopped."""

    predictor_options: PredictOptions  # the model and how to run it (every worker opens its own)
    options: ImageOptions
    inputs: Inputs
    batch_size: int = 4  # images per call of process_batch (a Ray Data batch)
    csv: bool = False
    part_rows: int = 256  # a table part at least every this many rows ...
    part_seconds: float = 30.0  # ... or this many seconds, so a crash loses little work


@dataclass
class SurveyResult:
    processed: int = 0  # images this run
    ok: int = 0
    errors: int = 0
    skipped: int = 0  # already in the table from an earlier run
    interrupted: bool = False
    seconds: float = 0.0
    table: Path | None = None
    total_rows: int = 0  # rows of results.parquet after the run
    first_rows_seconds: float | None = None  # start-up: until the first rows came back (Ray: workers started)
    error_messages: list[str] = field(default_factory=list)


def pending_tasks(job: SurveyJob, table: ResultsTable) -> tuple[list[dict[str, Any]], int]:
    """Tasks for the job's images not yet in the table, and how many were skipped."""
    done = table.done_keys()
    tasks, skipped = [], 0
    for item in job.inputs.items:
        size, mtime_ns = file_stat(item.file)
        key = done_key(item.file, size, mtime_ns, job.options.model_id)
        if key in done:
            skipped += 1
        else:
            tasks.append(task_of(item, size, mtime_ns, key))
    return tasks, skipped


class _PartWriter:
    """Rows in, table parts out: every ``part_rows`` rows or ``part_seconds`` seconds, and on flush."""

    def __init__(self, table: ResultsTable, carried: Any, part_rows: int, part_seconds: float) -> None:
        self.table, self.carried = table, carried
        self.part_rows, self.part_seconds = max(1, part_rows), part_seconds
        self.rows: list[dict[str, Any]] = []
        self.indices: list[int] = []
        self.last = time.monotonic()

    def add(self, rows: list[dict[str, Any]], indices: list[int]) -> None:
        self.rows += rows
        self.indices += indices
        if len(self.rows) >= self.part_rows or time.monotonic() - self.last >= self.part_seconds:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            carried = self.carried.take(self.indices) if self.carried is not None else None
            self.table.write_part(self.rows, carried)
        self.rows, self.indices, self.last = [], [], time.monotonic()


def _plain_batches(job: SurveyJob, tasks: list[dict[str, Any]], predictor: Any = None
                   ) -> Iterator[list[dict[str, Any]]]:
    from cracksam.deployment.runtime_cache import select_backend
    from cracksam.inference.predictor import open_predictor

    predictor = predictor or open_predictor(job.predictor_options, select_backend)
    for i in range(0, len(tasks), job.batch_size):
        yield process_batch(predictor, tasks[i : i + job.batch_size], job.options)


def run_survey(
    job: SurveyJob,
    engine: str = "plain",
    *,
    predictor: Any = None,
    ray_options: dict[str, Any] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
) -> SurveyResult:
    """Run ``job`` with ``engine``; returns counts.  ``predictor``: the plain engine's, if already open.
    ``on_start(pending, skipped)`` and ``on_rows(rows)`` report progress.  KeyboardInterrupt is caught
    (the result says ``interrupted``) after the rows that came back are in the table."""
    if engine not in ENGINES:
        raise InvalidValueError(f"unknown engine {engine!r}")
    check_carried_names(job.inputs.carried)
    table = ResultsTable(job.options.out, csv=job.csv)
    result = SurveyResult(table=table.path)
    start = time.perf_counter()
    tasks, result.skipped = pending_tasks(job, table)
    if on_start is not None:
        on_start(len(tasks), result.skipped)
    writer = _PartWriter(table, job.inputs.carried, job.part_rows, job.part_seconds)
    by_key = {t["key"]: t["index"] for t in tasks}
    try:
        if not tasks:
            batches: Iterator[list[dict[str, Any]]] = iter(())
        elif engine == "ray":
            from cracksam.survey.ray_engine import ray_batches

            batches = ray_batches(job, tasks, **(ray_options or {}))
        else:
            batches = _plain_batches(job, tasks, predictor)
        for rows in batches:
            if result.first_rows_seconds is None:
                result.first_rows_seconds = time.perf_counter() - start
            writer.add(rows, [by_key[r["key"]] for r in rows])
            result.processed += len(rows)
            for r in rows:
                if r["status"] == "ok":
                    result.ok += 1
                else:
                    result.errors += 1
                    result.error_messages.append(r["error"])
            if on_rows is not None:
                on_rows(rows)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        # Also on errors and Ctrl-C: what came back is kept, and the table is whole.
        writer.flush()
        merged = table.consolidate()
        result.total_rows = merged.num_rows if merged is not None else 0
        result.seconds = time.perf_counter() - start
    return result
