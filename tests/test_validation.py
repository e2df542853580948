"""Validation scores of the training module against counts computed independently in NumPy on
known images and masks (the training tests only compare the best-model callback with itself)."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from cracksam.training.config import TrainConfig
from cracksam.training.module import SegmentationModule

_MULTIPLE = 8


@dataclass
class _StridedConfig:
    arch: str
    image_size: int = 64


class _StridedDarkness(nn.Module):
    """Dark pixels (channel mean < 100) are cracks, decided per pixel; refuses sides that are not
    multiples of 8, as an encoder with stride 8 would, so the module must pad native-size images."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        self.config = _StridedConfig(arch)
        self.unused = nn.Parameter(torch.zeros(()))  # Lightning wants something to optimise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % _MULTIPLE or x.shape[-1] % _MULTIPLE:
            raise RuntimeError(f"input {tuple(x.shape)} is not padded to a multiple of {_MULTIPLE}")
        crack = (100.0 - x.mean(dim=1, keepdim=True)) / 5.0
        return torch.cat([torch.zeros_like(crack), crack], dim=1)


@pytest.fixture
def strided_arch():
    from cracksam.models import segmodels
    from cracksam.models.segmodels import ArchSpec, register_architecture

    name = "test_strided_darkness"
    register_architecture(ArchSpec(name, lambda pretrained, size: _StridedDarkness(name), "test only",
                                   multiple=_MULTIPLE))
    yield name
    segmodels._ARCHS.pop(name, None)


def _item(rng: np.random.Generator, h: int, w: int, dataset: str) -> dict:
    """An image whose dark rectangle (the prediction) overlaps the truth rectangle in part, so
    TP, FP and FN are all non-zero; 40 and 200 are far from the model's threshold of 100."""
    image = np.full((3, h, w), 200.0, np.float32)
    mask = np.zeros((h, w), np.int64)
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    image[:, y : y + h // 3, x : x + w // 3] = 40.0
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    mask[y : y + h // 4, x : x + w // 2] = 1
    return {"image": torch.from_numpy(image), "mask": torch.from_numpy(mask), "dataset": dataset}


def _scores(items: list[dict]) -> dict[str, float]:
    """Pooled precision, recall, F1 and IoU of the crack class over ``items``, from the images
    and masks alone."""
    tp = fp = fn = 0
    for it in items:
        pred = it["image"].numpy().mean(axis=0) < 100
        truth = it["mask"].numpy() == 1
        tp += int((pred & truth).sum())
        fp += int((pred & ~truth).sum())
        fn += int((~pred & truth).sum())
    assert tp and fp and fn and fp != fn  # every kind of pixel occurs: a swapped count changes a score
    return {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn),
            "iou": tp / (tp + fp + fn)}


def _iou(items: list[dict]) -> float:
    return _scores(items)["iou"]


@pytest.mark.parametrize("shape,batch_size", [((37, 45), 2), ((64, 64), 3)])
def test_validation_iou_matches_an_independent_count(strided_arch, shape, batch_size):
    """``val/iou``, the per-dataset IoUs and their mean equal IoUs counted in NumPy.  Mutants
    killed: ground truth inverted in ``validation_step`` (``~truth``), FP and FN swapped, per-image
    counts attributed to the wrong dataset, counts not reset between validations, the native-size
    image not padded to the stride or not cropped back (37 x 45 is not a multiple of 8)."""
    rng = np.random.default_rng(0)
    names = ["a", "b", "b", "a", "b", "a"]  # mixed within each batch
    items = [_item(rng, *shape, name) for name in names]
    model = _StridedDarkness(strided_arch)
    module = SegmentationModule(model, TrainConfig(), max_iters=1)
    assert module._multiple == _MULTIPLE
    loader = torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=False)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    scores = trainer.validate(module, loader, verbose=False)[0]
    by_set = {name: _iou([it for it in items if it["dataset"] == name]) for name in ("a", "b")}
    assert by_set["a"] != pytest.approx(by_set["b"])  # the sets are told apart
    for name, value in _scores(items).items():  # precision and recall tell FP from FN, IoU does not
        assert scores[f"val/{name}"] == pytest.approx(value, rel=1e-6), name
    assert scores["val_iou"] == pytest.approx(_iou(items), rel=1e-6)
    assert scores["val/iou_a"] == pytest.approx(by_set["a"], rel=1e-6)
    assert scores["val/iou_b"] == pytest.approx(by_set["b"], rel=1e-6)
    assert scores["val/iou_mean_sets"] == pytest.approx((by_set["a"] + by_set["b"]) / 2, rel=1e-6)
    # Nothing is carried over between validation epochs (another set, so stale counts would show).
    part = items[:3]
    again = trainer.validate(module, torch.utils.data.DataLoader(part, batch_size=batch_size), verbose=False)[0]
    assert again["val/iou"] == pytest.approx(_iou(part), rel=1e-6)
    assert again["val/iou_a"] == pytest.approx(_iou(part[:1]), rel=1e-6)
