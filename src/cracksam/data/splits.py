"""Splitting a dataset folder's samples into train / val / test.

Split policy (:func:`split_samples`), first rule that applies wins
-----------------------------------------------------------------
1. **Split lists** ``train.txt`` / ``val.txt`` / ``test.txt`` (one stem per line, blank lines and
   ``#`` comments ignored; a missing list means an empty split). A listed stem that is not in the
   dataset, or a stem listed in two lists, is an error. Samples in no list belong to no split (only
   to ``"all"``): official split lists sometimes leave images out on purpose.
2. **splits.tsv** (tab-separated, with a header; column ``stem`` required; every sample must have
   exactly one row and every row must name a sample):

   * a ``split`` column (``train``/``val``/``test``; ``valid``/``validation`` mean ``val``) is used
     as it is;
   * otherwise with ``split_source="source"`` the ``source_split`` column (the original repository's
     split, ``valid`` -> ``val``) is used;
   * otherwise (``split_source="groups"``, default) the ``source_image`` column is a group key: tiles
     cut from one photo are near-duplicates and must never be split across train/val/test, so whole
     groups are assigned (see :func:`assign_groups`).
3. **No split information**: every stem is its own group and the same group assignment is used.

Group assignment is deterministic for a given ``seed`` and ``ratios``: group keys are sorted,
shuffled with ``numpy.random.default_rng(seed)``, then each group in turn goes to the split whose
sample count is furthest below its target (``ratio * number of samples``), so the fractions of
samples, not of groups, follow the ratios. If a split with a positive ratio ends up empty while
another split has several groups, the smallest group of the split with the most groups is moved to
it (only matters for tiny datasets). Samples are always returned sorted by stem.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from cracksam.data.folder import Sample, scan_folder
from cracksam.data.io import IMAGE_EXTENSIONS
from cracksam.data.problems import raise_problems, shorten
from cracksam.errors import DatasetError, InvalidValueError

__all__ = [
    "SPLIT_NAMES",
    "SplitName",
    "SplitSource",
    "assign_groups",
    "has_split_files",
    "load_split",
    "split_assignment",
    "split_samples",
]

SplitName = Literal["train", "val", "test", "all"]
SplitSource = Literal["groups", "source"]

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if len(ratios) != 3:
        raise InvalidValueError(f"ratios must be three numbers (train, val, test), got {tuple(ratios)!r}")
    values = tuple(float(r) for r in ratios)
    if any(not math.isfinite(r) or r < 0 for r in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise InvalidValueError(f"ratios must be non-negative and sum to 1, got {tuple(ratios)!r}")
    return values  # type: ignore[return-value]


def assign_groups(
    sizes: Mapping[str, int],
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, str]:
    """Assign whole groups to ``train``/``val``/``test`` so sample fractions follow ``ratios``.

    Args:
        sizes: group key -> number of samples in the group.
        ratios: target fractions of samples (train, val, test); must sum to 1.
        seed: seed of the shuffle; the result depends only on ``sizes``, ``ratios`` and ``seed``.

    Returns:
        group key -> split name.
    """
    fractions = _check_ratios(ratios)
    keys = sorted(sizes)
    order = np.random.default_rng(seed).permutation(len(keys))
    total = sum(sizes.values())
    targets = [f * total for f in fractions]
    active = [k for k in range(3) if fractions[k] > 0]
    counts = [0, 0, 0]
    members: list[list[str]] = [[], [], []]
    for idx in order:
        key = keys[int(idx)]
        # Largest absolute deficit wins; ties go to the earlier split (train, then val).
        best = max(active, key=lambda k: (targets[k] - counts[k], -k))
        counts[best] += sizes[key]
        members[best].append(key)
    # Tiny datasets: make sure every split that should have data gets at least one group.
    for k in active:
        if members[k]:
            continue
        donors = [d for d in active if len(members[d]) > 1]
        if not donors:
            break
        donor = max(donors, key=lambda d: (len(members[d]), -d))
        moved = min(members[donor], key=lambda g: (sizes[g], g))
        members[donor].remove(moved)
        members[k].append(moved)
    return {key: SPLIT_NAMES[k] for k in range(3) for key in members[k]}


def has_split_files(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` names its split (rule 1 or 2 above); without, the split is drawn by seed (rule 3)."""
    root = Path(root)
    return any((root / f"{name}.txt").is_file() for name in SPLIT_NAMES) or (root / "splits.tsv").is_file()


def _read_split_lists(root: Path, stems: set[str]) -> dict[str, str] | None:
    """stem -> split from train.txt/val.txt/test.txt, or None when there are none."""
    files = {name: root / f"{name}.txt" for name in SPLIT_NAMES}
    if not any(p.is_file() for p in files.values()):
        return None
    assignment: dict[str, str] = {}
    where: dict[str, Path] = {}
    problems: list[str] = []
    for name, path in files.items():
        if not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read split list ({exc})") from None
        unknown: list[str] = []
        for raw in lines:
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            stem = entry
            # Be lenient with lists that name files ("001.jpg", "images/001.jpg") instead of stems.
            if stem not in stems and Path(entry).suffix.lower() in IMAGE_EXTENSIONS:
                stem = Path(entry).stem
            if stem not in stems:
                unknown.append(entry)
                continue
            if stem in assignment and assignment[stem] != name:
                problems.append(f"{path}: stem '{stem}' is also listed in {where[stem]}")
                continue
            assignment[stem] = name
            where[stem] = path
        if unknown:
            problems.append(
                f"{path}: {len(unknown)} unknown stem(s) (no image/mask pair): {shorten(unknown)}"
            )
    raise_problems(f"{root}: invalid split lists", problems)
    return assignment


def _read_splits_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a tab-separated split table."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = [r for r in csv.reader(fh, delimiter="\t") if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read split table ({exc})") from None
    if not rows:
        raise DatasetError(f"{path}: empty split table (expected a header with a 'stem' column)")
    header = [c.strip() for c in rows[0]]
    if "stem" not in header:
        raise DatasetError(f"{path}: split table has no 'stem' column (header: {', '.join(header)})")
    records: list[dict[str, str]] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DatasetError(f"{path}: line {line_no} has {len(row)} fields, the header has {len(header)}")
        records.append({k: v.strip() for k, v in zip(header, row, strict=True)})
    return header, records


def _assign_from_tsv(
    path: Path, stems: set[str], ratios: Sequence[float], seed: int, split_source: SplitSource
) -> dict[str, str]:
    header, records = _read_splits_tsv(path)
    problems: list[str] = []
    counts = Counter(r["stem"] for r in records)
    duplicated = sorted(s for s, n in counts.items() if n > 1)
    unknown = sorted(counts.keys() - stems)
    missing = sorted(stems - counts.keys())
    for label, items in (
        ("stem(s) listed more than once", duplicated),
        ("unknown stem(s) (no image/mask pair)", unknown),
        ("sample(s) without a row", missing),
    ):
        if items:
            problems.append(f"{path}: {len(items)} {label}: {shorten(items)}")
    raise_problems(f"{path}: invalid split table", problems)

    if "split" in header or split_source == "source":
        column = "split" if "split" in header else "source_split"
        if column not in header:
            raise DatasetError(
                f"{path}: split_source='source' needs a 'source_split' column (header: {', '.join(header)})"
            )
        assignment: dict[str, str] = {}
        for r in records:
            value = _SPLIT_ALIASES.get(r[column].lower())
            if value is None:
                problems.append(
                    f"{path}: stem '{r['stem']}' has {column} '{r[column]}' (expected train/val/test)"
                )
            else:
                assignment[r["stem"]] = value
        raise_problems(f"{path}: invalid split table", problems)
        return assignment

    if "source_image" in header:
        group_of = {r["stem"]: r["source_image"] for r in records}
    else:
        # A table with neither column carries no split information: each stem is its own group.
        group_of = {stem: stem for stem in stems}
    sizes = Counter(group_of.values())
    split_of_group = assign_groups(sizes, ratios, seed)
    return {stem: split_of_group[group] for stem, group in group_of.items()}


def split_assignment(
    samples: Iterable[Sample],
    root: str | os.PathLike[str],
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    split_source: SplitSource = "groups",
) -> dict[str, str]:
    """Map each sample's stem to ``"train"``/``"val"``/``"test"`` following the module's policy.

    Samples that no split list names are absent from the result. ``ratios`` and ``seed`` only
    matter when splits are made by groups or stems.
    """
    _check_ratios(ratios)
    if split_source not in ("groups", "source"):
        raise InvalidValueError(f"split_source must be 'groups' or 'source', got {split_source!r}")
    root = Path(root)
    stems = {s.stem for s in samples}
    from_lists = _read_split_lists(root, stems)
    if from_lists is not None:
        return from_lists
    tsv = root / "splits.tsv"
    if tsv.is_file():
        return _assign_from_tsv(tsv, stems, ratios, seed, split_source)
    split_of_stem = assign_groups(dict.fromkeys(stems, 1), ratios, seed)
    return split_of_stem


def split_samples(
    samples: Iterable[Sample],
    root: str | os.PathLike[str],
    split: SplitName,
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    split_source: SplitSource = "groups",
) -> list[Sample]:
    """The samples of one split of the dataset at ``root`` (see the module docstring for the policy).

    Args:
        samples: the dataset's samples (from :func:`scan_folder`); stems must be unique.
        root: the dataset folder, where ``train.txt``/... or ``splits.tsv`` are looked for.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        ratios: target fractions (train, val, test), summing to 1, for group/stem splits.
        seed: seed for group/stem splits.
        split_source: for ``splits.tsv`` without a ``split`` column: ``"groups"`` (split by
            ``source_image``) or ``"source"`` (use ``source_split``).

    Returns:
        The samples of the split sorted by stem (possibly empty).
    """
    samples = list(samples)
    if split not in (*SPLIT_NAMES, "all"):
        raise InvalidValueError(f"split must be one of train, val, test, all; got {split!r}")
    duplicated = sorted(s for s, n in Counter(s.stem for s in samples).items() if n > 1)
    if duplicated:
        raise DatasetError(f"{root}: duplicate stems in samples: {shorten(duplicated)}")
    if split == "all":
        _check_ratios(ratios)
        return sorted(samples, key=lambda s: s.stem)
    assignment = split_assignment(samples, root, ratios, seed, split_source)
    return sorted((s for s in samples if assignment.get(s.stem) == split), key=lambda s: s.stem)


def load_split(
    roots: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    split: SplitName,
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    split_source: SplitSource = "groups",
    *,
    validate: bool = True,
    check_content: bool = True,
    strict_masks: bool = True,
    mask_threshold: float | None = None,
) -> list[Sample]:
    """Scan several dataset folders and return one split of each, concatenated.

    Samples come in the order of ``roots``, each dataset sorted by stem. Stems may repeat across
    datasets (``Sample.dataset`` tells them apart), but two roots with the same folder name are an
    error because their samples could not be told apart.

    Raises:
        DatasetError: a folder is malformed, or the split is empty in all of them.
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    paths = [Path(r) for r in roots]
    if not paths:
        raise DatasetError("no dataset folders given")
    names = Counter(p.name for p in paths)
    clashes = sorted(n for n, c in names.items() if c > 1)
    if clashes:
        raise DatasetError(
            "dataset folders must have distinct names (the name identifies a dataset): "
            + ", ".join(str(p) for p in paths if p.name in clashes)
        )
    out: list[Sample] = []
    for path in paths:
        samples = scan_folder(path, validate=validate, check_content=check_content, strict_masks=strict_masks,
                              mask_threshold=mask_threshold)
        out.extend(split_samples(samples, path, split, ratios, seed, split_source))
    if not out:
        raise DatasetError(
            f"split '{split}' is empty in {', '.join(str(p) for p in paths)} "
            "(check the split lists or the ratios)"
        )
    return out
