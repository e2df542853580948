"""Dataset folders: finding image/mask pairs and validating them (the split policy is in
:mod:`cracksam.data.splits`).

Layout
------
A dataset is a folder ``<root>/`` with ``images/`` and ``masks/``; an image and its mask share the
file stem (``images/001.jpg`` <-> ``masks/001.png``) and may use any of the extensions in
:data:`~cracksam.data.io.IMAGE_EXTENSIONS` (case-insensitive). Hidden files (``.DS_Store``) and
``Thumbs.db``/``desktop.ini`` are ignored; any other file or sub-folder is reported, so that a
misnamed file is never silently left out. The dataset name is the folder name.

Validation (:func:`scan_folder`)
--------------------------------
All problems are collected and raised as ONE :class:`~cracksam.errors.DatasetError` that lists the
offending files (the first :data:`MAX_LISTED_PROBLEMS`, then "... and N more"): missing
``images/``/``masks/``, an image without mask, a mask without image, two files with the same stem,
an image and mask of different size, an unreadable or truncated file, a mask with values other than
two levels, an empty dataset.

The split policy (``train.txt``/``val.txt``/``test.txt``, ``splits.tsv``, group assignment) and
:func:`~cracksam.data.splits.load_split` (scan several folders, keep one split) are in
:mod:`cracksam.data.splits`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cracksam.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    check_mask_threshold,
    image_shape,
    read_image,
    read_mask,
)
from cracksam.data.problems import MAX_LISTED_PROBLEMS, raise_problems
from cracksam.errors import DatasetError

__all__ = ["MAX_LISTED_PROBLEMS", "Sample", "scan_folder"]

_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class Sample:
    """One image/mask pair of a dataset folder; ``(dataset, stem)`` identifies it."""

    stem: str
    image: Path
    mask: Path
    dataset: str
    # How the mask is read: None = a two-level mask (anything else is refused); a fraction in (0, 1)
    # = crack above that share of full scale (JPEG / anti-aliased masks). Kept with the sample so
    # every reader (validation, training, evaluation) applies the same rule.
    mask_threshold: float | None = None


def _list_folder(folder: Path, problems: list[str]) -> dict[str, list[Path]]:
    """Map stem -> image files in ``folder`` (sorted); report files that are not images."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name.startswith(".") or name.lower() in _IGNORED_NAMES:
            continue
        if entry.is_dir():
            problems.append(f"{entry}: sub-folders are not scanned (put files directly in {folder})")
        elif entry.suffix.lower() not in IMAGE_EXTENSIONS:
            allowed = " ".join(sorted(IMAGE_EXTENSIONS))
            problems.append(f"{entry}: not an image file (extension must be one of {allowed})")
        else:
            by_stem[entry.stem].append(entry)
    return by_stem


def _check_pair(sample: Sample, check_content: bool, strict_masks: bool, max_pixels: int | None) -> list[str]:
    """Problems of one pair: unreadable files, non-binary mask, size mismatch."""
    problems: list[str] = []
    shapes: list[tuple[int, int]] = []
    for path, is_mask in ((sample.image, False), (sample.mask, True)):
        try:
            if not check_content:
                shapes.append(image_shape(path, max_pixels))
            elif is_mask:
                shapes.append(read_mask(path, strict=strict_masks, max_pixels=max_pixels,
                                        threshold=sample.mask_threshold).shape)
            else:
                shapes.append(read_image(path, max_pixels=max_pixels).shape[:2])
        except DatasetError as exc:
            problems.append(str(exc))
    if len(shapes) == 2 and shapes[0] != shapes[1]:
        (ih, iw), (mh, mw) = shapes
        problems.append(
            f"{sample.mask}: mask size {mw}x{mh} does not match image {sample.image.name} ({iw}x{ih})"
        )
    return problems


def scan_folder(
    root: str | os.PathLike[str],
    validate: bool = True,
    check_content: bool = True,
    *,
    strict_masks: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    mask_threshold: float | None = None,
) -> list[Sample]:
    """Find and check the image/mask pairs of a dataset folder.

    Args:
        root: folder with ``images/`` and ``masks/``.
        validate: open the files to check them. Without it only the folder structure is checked
            (pairing, duplicates, unsupported files), which is instant.
        check_content: with ``validate``, fully decode every image and mask (catches truncated
            files and masks with values other than two levels); without it only headers are read
            (sizes, formats).
        strict_masks: passed to :func:`~cracksam.data.io.read_mask`.
        max_pixels: passed to the readers; larger images are reported.
        workers: threads used for validation (Pillow releases the GIL while decoding);
            default ``min(8, cpu_count)``.
        mask_threshold: read masks as crack above this fraction of full scale instead of
            requiring two levels (see :func:`~cracksam.data.io.read_mask`); kept in each Sample.

    Returns:
        The pairs, sorted by stem; ``Sample.dataset`` is the folder name.

    Raises:
        DatasetError: listing every offending file (see the module docstring).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    header = f"{root}: malformed dataset"
    problems: list[str] = []
    image_dir, mask_dir = root / "images", root / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            problems.append(f"{folder}: folder missing (a dataset needs images/ and masks/ with equal stems)")
    raise_problems(header, problems)

    images = _list_folder(image_dir, problems)
    masks = _list_folder(mask_dir, problems)
    for kind, files in (("images", images), ("masks", masks)):
        for stem, paths in sorted(files.items()):
            if len(paths) > 1:
                names = ", ".join(p.name for p in paths)
                problems.append(f"{paths[0].parent / stem}.*: duplicate stem '{stem}' in {kind}/ ({names})")
    for stem in sorted(images.keys() - masks.keys()):
        problems.append(f"{images[stem][0]}: image without mask (expected {mask_dir / stem}.<ext>)")
    for stem in sorted(masks.keys() - images.keys()):
        problems.append(f"{masks[stem][0]}: mask without image (expected {image_dir / stem}.<ext>)")

    samples = [
        Sample(stem=stem, image=images[stem][0], mask=masks[stem][0], dataset=root.name,
               mask_threshold=check_mask_threshold(mask_threshold))
        for stem in sorted(images.keys() & masks.keys())
        if len(images[stem]) == 1 and len(masks[stem]) == 1
    ]
    if not samples and not problems:
        problems.append(f"{root}: empty dataset (no image/mask pairs in {image_dir} and {mask_dir})")

    if validate and samples:
        n_workers = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = pool.map(lambda s: _check_pair(s, check_content, strict_masks, max_pixels), samples)
            for found in results:
                problems.extend(found)
    raise_problems(header, problems)
    return samples
