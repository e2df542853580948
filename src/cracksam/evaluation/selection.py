"""Which images of each dataset folder ``evaluate`` scores: the split asked for (``auto``: the test
split of a folder with split files, the whole of one without), in words and as counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from cracksam.data import Sample, has_split_files, scan_folder, split_samples
from cracksam.errors import DatasetError

SPLIT_CHOICES = ("auto", "train", "val", "test", "all")


class SplitOptions(Protocol):
    """The fields of :class:`cracksam.evaluation.protocol.ProtocolConfig` that choose images."""

    test: list[str]
    unseen: list[str]
    test_split: str
    unseen_split: str
    ratios: tuple[float, float, float]
    split_seed: int
    mask_threshold: float | None


def split_of(root: str | Path, requested: str) -> str:
    """The split of dataset folder ``root`` that is scored: ``requested``, except ``auto``, which is
    the folder's test split when it has split files (``train.txt``/``val.txt``/``test.txt`` or
    ``splits.tsv``: :func:`cracksam.data.has_split_files`) and all of its images otherwise (a split
    drawn by seed would leave 85 % of a folder unscored without saying so)."""
    if requested != "auto":
        return requested
    return "test" if has_split_files(root) else "all"


def select_samples(roots: Sequence[str], requested: str, cfg: SplitOptions) -> list[Sample]:
    """The scored samples of each folder (its :func:`split_of`), in the order of ``roots``; as
    :func:`cracksam.data.load_split`, but each folder with its own split."""
    clashes = sorted(n for n, c in Counter(Path(r).name for r in roots).items() if c > 1)
    if clashes:
        raise DatasetError(
            "dataset folders must have distinct names (the name identifies a dataset): "
            + ", ".join(str(r) for r in roots if Path(r).name in clashes)
        )
    out: list[Sample] = []
    for root in roots:
        found = scan_folder(root, mask_threshold=cfg.mask_threshold)
        out.extend(split_samples(found, root, split_of(root, requested),  # type: ignore[arg-type]
                                 ratios=cfg.ratios, seed=cfg.split_seed))
    if not out:
        raise DatasetError(f"nothing to score in {', '.join(str(r) for r in roots)}: "
                           f"{describe_selection(roots, requested)} is empty (check the split lists or the ratios)")
    return out


def describe_selection(roots: Sequence[str], requested: str) -> str:
    """Which images of ``roots`` are scored, in words: 'test split of a+b', 'all images of c', or
    both for folders scored differently."""
    groups: dict[str, list[str]] = {}
    for root in roots:
        groups.setdefault(split_of(root, requested), []).append(Path(root).name)
    return ", ".join(("all images" if split == "all" else f"{split} split") + " of " + "+".join(names)
                     for split, names in groups.items())


def scored_sets(cfg: SplitOptions, test: Sequence[Sample], unseen: dict[str, list[Sample]]) -> list[dict[str, Any]]:
    """Per column and dataset folder: the split asked for and the one scored (they differ under
    ``auto``), whether the folder has split files, and how many images were scored; for a folder
    without split files scored by a split drawn by seed, also how many images it has in all."""
    sets = [("test", root, cfg.test_split, test) for root in cfg.test] if test else []
    sets += [("unseen", root, cfg.unseen_split, unseen[Path(root).name]) for root in cfg.unseen]
    scored = []
    for role, root, requested, samples in sets:
        split, files = split_of(root, requested), has_split_files(root)
        entry: dict[str, Any] = {"set": role, "dataset": Path(root).name, "split": split, "requested": requested,
                                 "split_files": files,
                                 "images": sum(1 for s in samples if s.dataset == Path(root).name)}
        if split != "all" and not files:
            entry["seeded"] = {"of": len(scan_folder(root, validate=False)), "seed": cfg.split_seed,
                               "share": cfg.ratios[("train", "val", "test").index(split)]}
        scored.append(entry)
    return scored
