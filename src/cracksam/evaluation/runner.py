"""Evaluation protocol of the paper: test set, corrupted test sets, blur sweep, zero-shot sets.

One pass = one model × one list of samples × one condition (``clean``, ``dim``, ``blurry``,
``blur:K``).  Images are read at their original size, corrupted there, run through the model at
its input size, and scored on the original pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cracksam.data import CrackDataset, Sample
from cracksam.evaluation.metrics import BinaryMetrics
from cracksam.evaluation.thin_metrics import ThinMetrics
from cracksam.evaluation.visualize import save_visuals
from cracksam.inference.backends import TorchBackend
from cracksam.inference.predictor import Predictor
from cracksam.progress_bar import progress_bar


@dataclass
class EvalModel:
    """A model under evaluation and what the report says about it.  ``model`` is a PyTorch module,
    or the backend of an exported file (ONNX Runtime / OpenVINO), scored by the same predictor."""

    name: str
    model: nn.Module | Any
    backbone: str
    total_params: int
    trainable_params: int
    source: str = ""


@dataclass
class PassResult:
    model: str
    dataset: str
    condition: str
    n_images: int
    dataset_level: dict[str, float]
    image_level: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "condition": self.condition,
            "n_images": self.n_images,
            "dataset_level": self.dataset_level,
            "image_level": self.image_level,
            **self.extra,
        }


class MeasureComparison:
    """Crack length and width measured on predicted vs true masks, accumulated image by image:
    what an inspector's report would get wrong, in pixels (and mm when a scale is given)."""

    def __init__(self, mm_per_px: float | None = None, min_length_px: float = 10.0) -> None:
        self.mm_per_px, self.min_length_px = mm_per_px, min_length_px
        self.length_true = self.length_pred = 0.0
        self.cracks_true = self.cracks_pred = 0
        self.width_errors: list[float] = []
        self.max_width_errors: list[float] = []

    def update(self, pred: np.ndarray, truth: np.ndarray) -> None:
        from cracksam.measurement import measure_mask

        p = measure_mask(pred, min_length_px=self.min_length_px).totals
        t = measure_mask(truth, min_length_px=self.min_length_px).totals
        self.length_true += t.total_length_px
        self.length_pred += p.total_length_px
        self.cracks_true += t.n_cracks
        self.cracks_pred += p.n_cracks
        if t.n_cracks and p.n_cracks:  # widths compare only where both see a crack
            self.width_errors.append(abs(p.mean_width_px - t.mean_width_px))
            self.max_width_errors.append(abs(p.max_width_px - t.max_width_px))

    def compute(self) -> dict[str, Any]:
        def mean(v: list[float]) -> float | None:
            return float(np.mean(v)) if v else None

        out: dict[str, Any] = {
            "total_length_px_true": self.length_true,
            "total_length_px_pred": self.length_pred,
            "length_relative_error": (self.length_pred - self.length_true) / self.length_true
            if self.length_true
            else None,
            "n_cracks_true": self.cracks_true,
            "n_cracks_pred": self.cracks_pred,
            "mean_width_abs_error_px": mean(self.width_errors),
            "max_width_abs_error_px": mean(self.max_width_errors),
            "images_with_width_comparison": len(self.width_errors),
            "mm_per_px": self.mm_per_px,
        }
        if self.mm_per_px:
            for key in (
                "total_length_px_true",
                "total_length_px_pred",
                "mean_width_abs_error_px",
                "max_width_abs_error_px",
            ):
                if out[key] is not None:
                    out[key.replace("_px", "_mm")] = out[key] * self.mm_per_px
        return out


class _Originals(Dataset):
    """Original-size (corrupted) image and mask, read in DataLoader workers."""

    def __init__(self, dataset: CrackDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray, np.ndarray]:
        image, mask = self.dataset.load_original(i)
        return i, image, mask


def _columns(batch: list[tuple]) -> list[tuple]:
    """Batch of variable-size originals: a tuple per field instead of stacked tensors."""
    return list(zip(*batch, strict=True))


def eval_backend(model: EvalModel, device: str | torch.device = "cpu") -> Any:
    """The runtime that scores ``model``: PyTorch on ``device`` for a module, else its own backend."""
    if isinstance(model.model, nn.Module):
        return TorchBackend(model.model, device=device)
    return model.model


def evaluate_samples(
    model: EvalModel,
    samples: Sequence[Sample],
    condition: str = "clean",
    dataset_name: str = "",
    threshold: float = 0.5,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    visualize: int = 0,
    visual_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    measure: bool = False,
    mm_per_px: float | None = None,
    mode: str | None = None,
    scale: float | None = None,
) -> PassResult:
    """Score ``model`` on ``samples`` under ``condition``; both metric reductions are returned.

    ``dataset_level`` / ``image_level`` hold strict precision, recall, F1 and IoU (the headline)
    and, beside them, the thin-structure scores of :class:`ThinMetrics`: ``f1_tol2`` (with
    ``precision_tol2``, ``recall_tol2``), ``cldice`` (with ``cldice_tprec``, ``cldice_tsens``), and
    ``ods_f1`` + ``ods_threshold`` (dataset level) or ``ois_f1`` (image level).
    """
    backend = eval_backend(model, device)
    dataset = CrackDataset(samples, image_size=int(backend.image_size), corruption=condition)
    loader = DataLoader(_Originals(dataset), batch_size=batch_size, num_workers=num_workers, collate_fn=_columns)
    metrics = BinaryMetrics(threshold=threshold)
    thin = ThinMetrics(threshold=threshold)  # ~10 ms per 480 x 320 image on one CPU core
    scored_sets: list[str] = []  # dataset of each scored image, in update order
    comparison = MeasureComparison(mm_per_px) if measure else None
    saved = 0
    # The same predictor as `cracksam predict`, by default in the model's own inference mode and
    # scale (``mode`` / ``scale`` override them): evaluation scores what users get.
    predictor = Predictor(backend, mode=mode, scale=scale, batch_size=batch_size, threshold=threshold)
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task(f"{model.name} · {dataset_name or 'data'} · {condition}", total=len(dataset))
        for indices, images, masks in loader:
            preds = predictor.predict(list(images))
            for i, img, mask, pred in zip(indices, images, masks, preds, strict=True):
                metrics.update(pred.prob, mask)
                thin.update(pred.prob, mask)
                scored_sets.append(samples[i].dataset)
                if comparison is not None:
                    comparison.update(pred.prob >= threshold, mask > 0)
                if saved < visualize and visual_dir is not None:
                    stem = samples[i].stem
                    out = Path(visual_dir) / model.name / (dataset_name or "data") / condition.replace(":", "")
                    save_visuals(out, stem, img, mask, pred, threshold)
                    saved += 1
            bar.advance(task, len(indices))
    extra: dict[str, Any] = {"measurement": comparison.compute()} if comparison is not None else {}
    names = list(dict.fromkeys(scored_sets))
    if len(names) > 1:  # several datasets pooled into one pass are also scored one by one
        keeps = {name: [s == name for s in scored_sets] for name in names}
        extra["per_dataset"] = {
            name: {"n_images": int(sum(keep)), **_levels(metrics.select(keep), thin.select(keep))}
            for name, keep in keeps.items()
        }
    levels = _levels(metrics, thin)
    return PassResult(
        model=model.name,
        dataset=dataset_name,
        condition=condition,
        n_images=len(metrics),
        dataset_level=levels["dataset_level"],
        image_level=levels["image_level"],
        extra=extra,
    )


def _levels(metrics: BinaryMetrics, thin: ThinMetrics) -> dict[str, dict[str, float]]:
    """``dataset_level`` and ``image_level``: strict scores first, thin-structure scores beside."""
    return {
        "dataset_level": {**metrics.compute("dataset"), **thin.compute("dataset")},
        "image_level": {**metrics.compute("image"), **thin.compute("image")},
    }
