"""Validation counts of the training module, as torchmetrics metrics so that every rank's counts
are summed when they are computed (DDP-safe without reducing by hand).

The pooled counts are :class:`torchmetrics.classification.BinaryStatScores`; the per-dataset
counts (:class:`SetStatScores`) have one summed row per validation dataset.  Predictions are
thresholded by the module (``prob >= threshold``, the rule of
:class:`~cracksam.evaluation.metrics.BinaryMetrics`) and given as 0/1 labels, so torchmetrics'
own ``>`` threshold never applies.  The scores come from
:func:`~cracksam.evaluation.metrics.metrics_from_counts` (its 0/0 rules), not from torchmetrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torchmetrics import Metric


class SetStatScores(Metric):
    """TP, FP and FN of the crack class per validation dataset, summed over images and ranks.

    ``names`` should list every dataset of the validation split (the data module knows them), so
    every rank holds the same rows even when its shard lacks a small dataset; a name not listed is
    added when first seen (enough for one process, where nothing is synchronised)."""

    full_state_update = False
    counts: torch.Tensor

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__()
        self.names: list[str] = sorted(set(names))
        self.add_state("counts", torch.zeros(len(self.names), 3, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, truth: torch.Tensor, datasets: Sequence[str]) -> None:
        """Add the counts of a batch: ``pred``, ``truth`` 0/1 or boolean tensors (N x H x W), ``datasets``
        the dataset name of each image."""
        pred, truth = pred.bool(), truth.bool()
        per_image = torch.stack([(pred & truth).sum((1, 2)), (pred & ~truth).sum((1, 2)),
                                 (~pred & truth).sum((1, 2))], dim=1).to(self.counts.dtype)
        new = [n for n in dict.fromkeys(datasets) if n not in self.names]
        if new:
            self.names.extend(new)
            self.counts = torch.cat([self.counts, self.counts.new_zeros(len(new), 3)])
        rows = torch.tensor([self.names.index(n) for n in datasets], device=self.counts.device)
        self.counts.index_add_(0, rows, per_image)

    def compute(self) -> dict[str, tuple[int, int, int]]:
        """dataset name -> (tp, fp, fn), in the order of the names (the mean over sets adds them so)."""
        rows = dict(zip(self.names, self.counts.tolist(), strict=True))
        return {name: (int(rows[name][0]), int(rows[name][1]), int(rows[name][2])) for name in sorted(rows)}
