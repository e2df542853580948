"""PyTorch dataset of image/mask pairs, with optional corruption and augmentation.

Per sample the order is: read the original image and mask -> corrupt the image at its original
size (the robustness protocol corrupts the photo, not the network input) -> resize to S x S (and
augment when training) -> tensors. Images are NOT normalised: the model owns its normalisation
(SAM's pixel mean/std), so every consumer of this dataset sees the same 0..255 values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from cracksam.data.corruptions import Corruption, get_corruption
from cracksam.data.folder import Sample
from cracksam.data.io import DEFAULT_MAX_PIXELS, read_image, read_mask
from cracksam.data.native import NativeTransform
from cracksam.data.skeleton import skeleton_target
from cracksam.data.transforms import build_transform
from cracksam.errors import DatasetError

__all__ = ["CrackDataset"]


class CrackDataset(Dataset[dict[str, Any]]):
    """Samples as model inputs.

    ``dataset[i]`` is a dict:

    * ``"image"``: ``float32`` tensor ``3 x S x S``, RGB values in 0..255 (not normalised);
    * ``"mask"``: ``int64`` tensor ``S x S`` with values {0, 1} (1 = crack);
    * ``"index"``: ``int``, the position ``i`` in ``samples``;
    * ``"stem"`` / ``"dataset"``: ``str``, identify the sample.

    Args:
        samples: pairs to serve (e.g. from :func:`~cracksam.data.splits.load_split`).
        image_size: side ``S`` of the square output.
        augment: random flips/rotations (training); see :mod:`cracksam.data.transforms`.
        corruption: name for :func:`~cracksam.data.corruptions.get_corruption` (``None`` = clean),
            applied to the image at original size before resizing.
        seed: seed of the augmentation in the main process (``None``: from the OS). In DataLoader
            workers the augmentation is reseeded from the worker's torch seed, so workers do not
            repeat each other. Training indexes with ``(index, seed)`` pairs instead
            (:class:`~cracksam.data.sampling.EpochSampler`): each draw is augmented from its own
            seed, whatever the worker, so a seed reproduces a run bit for bit.
        strict_masks, max_pixels: passed to the readers in :mod:`cracksam.data.io`.
        crop: random ``crop x crop`` window of the resized sample (training at inference scale).
        teacher: a :class:`~cracksam.training.teacher.TeacherCache`; samples then also hold
            ``"teacher"``: float32 (2, S, S) teacher logits, augmented like the mask (resized
            bilinearly first when the teacher's input size differs from S).
        native: the native-scale training pipeline (:mod:`cracksam.data.native`) used instead of
            resize-to-S; ``image_size``, ``crop`` and ``augment`` are then unused for the geometry.
        native_eval: serve images and masks at their original size (validation of a model that
            runs at native resolution; batch them one at a time, sizes differ).
        skeleton: also serve ``"skeleton"`` (uint8 H x W, the mask's skeleton dilated this many
            times) for the skeleton-recall loss; ``None`` = off.

    Raises:
        ValueError: unknown corruption or bad ``image_size`` (at construction).
        DatasetError: from ``__getitem__``/``load_original`` when a file is unreadable, a mask is
            not binary or image and mask sizes differ; the message names the file(s).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        image_size: int = 448,
        augment: bool = False,
        corruption: str | None = None,
        *,
        seed: int | None = None,
        strict_masks: bool = True,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        crop: int | None = None,
        teacher: Any = None,
        native: NativeTransform | None = None,
        native_eval: bool = False,
        skeleton: int | None = None,
    ) -> None:
        self.samples: list[Sample] = list(samples)
        self.image_size = image_size
        self.augment = augment
        self.corruption_name = corruption or "clean"
        # Resolved now so a typo fails at construction, not in the first batch.
        self._corrupt: Corruption = get_corruption(self.corruption_name)
        self.strict_masks = strict_masks
        self.max_pixels = max_pixels
        self.crop = crop
        # A TeacherCache (cracksam.training.teacher): its logits are transformed like the mask.
        self.teacher = teacher
        extra = {"teacher": "mask"} if teacher is not None else None
        self.native = native
        self.native_eval = native_eval
        self.skeleton = skeleton
        self.transform: Any
        if native is not None:
            self.transform = native
        elif native_eval:
            self.transform = None
        else:
            self.transform = build_transform(image_size, augment, crop=crop, additional_targets=extra)
        if seed is not None and self.transform is not None:
            self.transform.set_random_seed(seed)
        # Seed of the DataLoader worker whose rng the transform currently uses (None: main process).
        self._worker_seed: int | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def _index(self, i: int) -> int:
        n = len(self.samples)
        index = int(i)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        return index

    def load_original(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Image and mask at ORIGINAL size, for evaluation on the original pixels.

        Returns:
            ``(image, mask)``: ``H x W x 3`` ``uint8`` RGB, corrupted if the dataset has a corruption;
            ``H x W`` ``uint8`` in {0, 1}.
        """
        sample = self.samples[self._index(i)]
        image = read_image(sample.image, max_pixels=self.max_pixels)
        mask = read_mask(sample.mask, strict=self.strict_masks, max_pixels=self.max_pixels,
                         threshold=sample.mask_threshold)
        if image.shape[:2] != mask.shape:
            # Only possible when the folder was scanned without validation; fail with both names
            # here instead of deep inside albumentations.
            (ih, iw), (mh, mw) = image.shape[:2], mask.shape
            raise DatasetError(
                f"{sample.mask}: mask size {mw}x{mh} does not match image {sample.image} ({iw}x{ih})"
            )
        return self._corrupt(image), mask

    def _reseed_in_worker(self) -> None:
        # Forked/spawned workers start with copies of the same augmentation rng; without reseeding
        # every worker would produce the same "random" flips.
        info = get_worker_info()
        if info is not None and self.transform is not None and self._worker_seed != info.seed:
            self.transform.set_random_seed(info.seed % 2**32)
            self._worker_seed = info.seed

    def __getitem__(self, i: int | tuple[int, int]) -> dict[str, Any]:
        draw_seed = None
        if isinstance(i, tuple):  # (index, augmentation seed) from sampling.EpochSampler
            i, draw_seed = i
        index = self._index(i)
        sample = self.samples[index]
        image, mask = self.load_original(index)
        if draw_seed is not None and self.transform is not None:
            # The draw's own seed: the augmentation does not depend on the worker that loads it.
            self.transform.set_random_seed(int(draw_seed))
        elif self.augment or self.native is not None:
            self._reseed_in_worker()
        targets: dict[str, np.ndarray] = {"image": image, "mask": mask}
        if self.teacher is not None:
            logits = self.teacher.load(sample).astype(np.float32).transpose(1, 2, 0)
            if logits.shape[0] != self.image_size:
                import cv2

                logits = cv2.resize(logits, (self.image_size, self.image_size), interpolation=cv2.INTER_LINEAR)
            targets["teacher"] = np.ascontiguousarray(logits)
        out = targets if self.transform is None else self.transform(**targets)
        # C-contiguous (C, H, W): a channels-last float tensor reached oneDNN's slow path (15x slower
        # convolutions for a batch of one, as in native-scale validation).
        image_t = torch.from_numpy(np.ascontiguousarray(np.asarray(out["image"]).transpose(2, 0, 1), dtype=np.float32))
        mask_t = torch.from_numpy(np.ascontiguousarray(out["mask"]).astype(np.int64))
        item = {
            "image": image_t,
            "mask": mask_t,
            "index": index,
            "stem": sample.stem,
            "dataset": sample.dataset,
        }
        if self.skeleton is not None:
            item["skeleton"] = torch.from_numpy(skeleton_target(np.asarray(out["mask"]), self.skeleton))
        if self.teacher is not None:
            item["teacher"] = torch.from_numpy(np.ascontiguousarray(out["teacher"]).transpose(2, 0, 1).copy())
        return item
