"""The results table: one row per image, kept consistent whatever happens to the job.

While a job runs, finished rows go to ``results.parts/part-*.parquet``, each part written to a
temporary file and renamed into place, so a crash (even SIGKILL) leaves only whole parts.  When the
job ends (finished or interrupted) the parts are merged into ``results.parquet`` (and
``results.csv`` on request), again by rename, and only then removed.  The table describes the
files in its folder, so it keeps one row per image path, the latest: a row both in
``results.parquet`` and a part (a crash between the two steps) is kept once, and an image redone
(changed file or other model; its mask was overwritten) keeps only its new row.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from cracksam.config import default_file_mode
from cracksam.errors import ConfigError
from cracksam.survey.manifest import require_pyarrow
from cracksam.survey.rows import BASE_COLUMNS, TAIL_COLUMNS

TABLE_NAME = "results.parquet"
PARTS_NAME = "results.parts"


def check_carried_names(carried: Any) -> None:
    """Carried manifest columns must not overwrite the results' own columns."""
    if carried is None:
        return
    clash = sorted(set(carried.column_names) & set(BASE_COLUMNS + TAIL_COLUMNS))
    if clash:
        raise ConfigError(f"manifest column(s) {clash} have the names of results columns; rename them")


def rows_to_table(rows: list[dict[str, Any]], carried: Any = None) -> Any:
    """Rows (dicts of plain values) and their carried columns (a pyarrow Table, same order) as one Table."""
    pa = require_pyarrow()
    columns: list[str] = list(BASE_COLUMNS)
    for row in rows:  # measurement columns, between the base and the tail columns, in first-seen order
        columns += [k for k in row if k not in columns and k not in TAIL_COLUMNS]
    columns += TAIL_COLUMNS
    arrays = {c: pa.array([r.get(c) for r in rows]) for c in columns}
    for c in ("width", "height", "crack_pixels", "size_bytes", "mtime_ns"):
        arrays[c] = arrays[c].cast(pa.int64())  # typed even when every row of a part is an error
    for c in ("crack_fraction", "read_s", "predict_s", "write_s", "seconds"):
        arrays[c] = arrays[c].cast(pa.float64())
    for c in ("path", "status", "error", "mask", "model_id", "key"):
        arrays[c] = arrays[c].cast(pa.string())
    table = pa.table(arrays)
    if carried is not None:
        clash = set(carried.column_names) & set(columns)
        if clash:
            raise ConfigError(f"manifest column(s) {sorted(clash)} have the names of results columns; rename them")
        for name in carried.column_names:
            table = table.append_column(name, carried.column(name))
    return table


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename over ``path``: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsTable:
    """``results.parquet`` (+ parts while running, + ``results.csv``) in ``out``."""

    def __init__(self, out: str | os.PathLike[str], csv: bool = False) -> None:
        self.pa = require_pyarrow()
        self.out = Path(out)
        self.path = self.out / TABLE_NAME
        self.parts = self.out / PARTS_NAME
        self.csv_path = self.out / "results.csv" if csv else None
        self._seq = 0

    def _files(self) -> list[Path]:
        parts = sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []
        return ([self.path] if self.path.is_file() else []) + parts

    def _read(self, path: Path, columns: list[str] | None = None) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path, columns=columns)
        except (self.pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(f"{path}: not a readable results table ({exc}); move it away to start afresh") from None

    def done_keys(self) -> set[str]:
        """Keys of the images already in the table (finished, ok or error)."""
        keys: set[str] = set()
        for f in self._files():
            keys.update(k for k in self._read(f, ["key"]).column("key").to_pylist() if k is not None)
        return keys

    def write_part(self, rows: list[dict[str, Any]], carried: Any = None) -> Path:
        import pyarrow.parquet as pq

        table = rows_to_table(rows, carried)
        self._seq += 1
        # Time first: parts sort in the order they were written, across reruns.
        path = self.parts / f"part-{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.parquet"
        _atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        return path

    def consolidate(self) -> Any:
        """Merge the parts into ``results.parquet`` (each path once, its latest row); returns the table."""
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        files = self._files()
        if not files:
            return None
        tables = [self._read(f) for f in files]
        table = self.pa.concat_tables(tables, promote_options="permissive")
        if table.num_rows:
            numbered = table.append_column("_row", self.pa.array(range(table.num_rows), self.pa.int64()))
            last = numbered.group_by("path", use_threads=False).aggregate([("_row", "max")]).column("_row_max")
            table = table.take(sorted(last.to_pylist()))  # the latest row of each path, in table order
        _atomic_write(self.path, lambda tmp: pq.write_table(table, tmp))
        if self.csv_path is not None:
            _atomic_write(self.csv_path, lambda tmp: pacsv.write_csv(table, tmp))
        for f in files:
            if f != self.path:
                f.unlink(missing_ok=True)
        if self.parts.is_dir() and not any(self.parts.iterdir()):
            self.parts.rmdir()
        return table
