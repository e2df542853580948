"""Data: reading files, dataset folders and splits, corruptions, transforms, the torch dataset.

* :mod:`.io`: ``read_image``/``read_mask`` (numpy arrays, errors as ``DatasetError``).
* :mod:`.inputs`: ``expand_inputs`` (files, folders, globs named by the user -> image files).
* :mod:`.folder`: ``Sample``, ``scan_folder`` (finding and validating the pairs).
* :mod:`.splits`: the split policy, ``split_samples``/``load_split``.
* :mod:`.corruptions`: ``dim``, ``blurry``, ``gaussian_blur`` and the name registry.
* :mod:`.transforms`: resize/augmentation pipeline.
* :mod:`.dataset`: ``CrackDataset``.
"""

from cracksam.data.corruptions import (
    CORRUPTIONS,
    Corruption,
    blurry,
    clean,
    corruption_names,
    dim,
    gaussian_blur,
    get_corruption,
)
from cracksam.data.folder import Sample, scan_folder
from cracksam.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    MaskLevelError,
    image_shape,
    read_image,
    read_mask,
)
from cracksam.data.splits import (
    SPLIT_NAMES,
    SplitName,
    SplitSource,
    assign_groups,
    has_split_files,
    load_split,
    split_assignment,
    split_samples,
)

# Imported on first use: `cracksam --help` imports cracksam.data (input expansion) and must not pay
# for torch, which the dataset and albumentations (the transforms) import.
_LAZY = {"CrackDataset": "cracksam.data.dataset", "build_transform": "cracksam.data.transforms"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CORRUPTIONS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "SPLIT_NAMES",
    "Corruption",
    "CrackDataset",
    "MaskLevelError",
    "Sample",
    "SplitName",
    "SplitSource",
    "assign_groups",
    "has_split_files",
    "blurry",
    "build_transform",
    "clean",
    "corruption_names",
    "dim",
    "gaussian_blur",
    "get_corruption",
    "image_shape",
    "load_split",
    "read_image",
    "read_mask",
    "scan_folder",
    "split_assignment",
    "split_samples",
]
