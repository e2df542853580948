"""The images of a survey job, and the key that says one of them is already done.

A manifest is a CSV/TSV or Parquet table with one image path per row (column ``path``, ``image``,
``file`` or ``filename``, or the one named by ``--path-column``); every other column is carried
through to the results table unchanged (GPS, chainage, camera id ...).  Relative paths are taken
from the manifest's folder, so a survey folder can be moved with its manifest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cracksam.errors import ConfigError

PATH_COLUMNS = ("path", "image", "file", "filename")
INSTALL_HINT = 'pip install "cracksam[distributed]"'


def require_pyarrow() -> Any:
    """pyarrow, or a one-line error saying how to install it (it comes with the ``distributed`` extra)."""
    try:
        import pyarrow
    except ImportError:
        raise ConfigError(f"the results table (Parquet) needs pyarrow; install it with: {INSTALL_HINT}") from None
    return pyarrow


@dataclass(frozen=True)
class Item:
    """One image of a job."""

    index: int  # row of the job (manifest order): where its carried columns are
    path: str  # as the user wrote it (the results' ``path`` column, for joining back)
    file: str  # where it is read from (absolute)
    stem: str  # output file names, unique within the job


@dataclass
class Inputs:
    items: list[Item]
    carried: Any  # pyarrow.Table of the carried columns, one row per item (None without a manifest)
    problems: list[tuple[str, str]]  # (name, why) for inputs that name no image
    duplicates: int  # paths listed more than once (done once)


def done_key(file: str, size: int | None, mtime_ns: int | None, model_id: str) -> str:
    """Same file (absolute path, size, modification time) through the same model: the same key."""
    text = f"{file}\0{size}\0{mtime_ns}\0{model_id}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def file_stat(file: str) -> tuple[int | None, int | None]:
    """(size, mtime in ns) of ``file``; (None, None) when it cannot be read (recorded as an error row)."""
    try:
        st = os.stat(file)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


def read_manifest(path: str | os.PathLike[str], path_column: str | None = None) -> tuple[list[str], Any]:
    """(image paths as written, carried columns as a pyarrow Table) from a CSV/TSV/Parquet manifest."""
    pa = require_pyarrow()
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--manifest {p}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = pq.read_table(p)
        elif suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            # Carried columns keep their inferred types (numbers stay numbers), paths stay text.
            table = pacsv.read_csv(p, parse_options=pacsv.ParseOptions(delimiter=delimiter))
        else:
            raise ConfigError(f"--manifest {p}: expected a .csv, .tsv or .parquet file")
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--manifest {p}: cannot read it ({first})") from None
    names = list(table.column_names)
    if path_column is None:
        path_column = next((c for c in PATH_COLUMNS if c in names), None)
        if path_column is None:
            raise ConfigError(f"--manifest {p}: no image path column ({', '.join(PATH_COLUMNS)}) among its "
                              f"columns {names}; name it with --path-column")
    elif path_column not in names:
        raise ConfigError(f"--path-column {path_column!r} is not a column of {p} (columns: {names})")
    column = table.column(path_column)
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    paths = column.to_pylist()
    missing = [i + 1 for i, v in enumerate(paths) if v is None or not str(v).strip()]
    if missing:
        raise ConfigError(f"--manifest {p}: empty image path in row(s) {missing[:10]}")
    if not paths:
        raise ConfigError(f"--manifest {p}: no rows")
    return [str(v) for v in paths], table.drop_columns([path_column])


def collect_inputs(inputs: list[str], manifest: str | os.PathLike[str] | None,
                   path_column: str | None = None) -> Inputs:
    """The job's images from positional inputs (files, folders, globs) or a manifest, in order,
    each path once, each with an output stem unique within the job (the same on every rerun)."""
    from cracksam.data.inputs import expand_inputs, unique_stem

    if manifest is not None and inputs:
        raise ConfigError("give either input images or --manifest, not both")
    if path_column is not None and manifest is None:
        raise ConfigError("--path-column only applies with --manifest")
    carried = None
    problems: list[tuple[str, str]] = []
    if manifest is not None:
        written, carried = read_manifest(manifest, path_column)
        root = Path(manifest).resolve().parent
        pairs = [(w, os.path.abspath(root / w)) for w in written]
    else:
        files, problems = expand_inputs(inputs)
        pairs = [(str(f), os.path.abspath(f)) for f in files]
    if not pairs and not problems:
        raise ConfigError("no input images")
    items: list[Item] = []
    keep: list[int] = []
    seen: set[str] = set()
    used: set[str] = set()
    for i, (written_path, file) in enumerate(pairs):
        if file in seen:
            continue
        seen.add(file)
        keep.append(i)
        items.append(Item(len(items), written_path, file, unique_stem(Path(file), used)))
    if carried is not None and len(keep) != carried.num_rows:
        carried = carried.take(keep)
    return Inputs(items, carried, problems, len(pairs) - len(items))
