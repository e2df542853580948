"""Segmentation metrics of the crack class (paper Eq. 9-12).

For one set of pixels with true positives TP, false positives FP and false negatives FN::

    precision = TP / (TP + FP)            recall = TP / (TP + FN)
    F1        = 2 P R / (P + R)           IoU    = TP / (TP + FP + FN)

(F1 is computed as ``2 TP / (2 TP + FP + FN)``, which is the same number whenever P and R are
defined.)  :class:`BinaryMetrics` accumulates the counts image by image and reduces them either
over the whole data set or per image; see :meth:`BinaryMetrics.compute` for the 0/0 rules.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from cracksam.errors import InvalidValueError

__all__ = ["BinaryMetrics", "binary_counts", "metrics_from_counts"]

METRIC_NAMES = ("precision", "recall", "f1", "iou")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


def _check_prob_range(lo: float, hi: float) -> None:
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(
            f"probabilities must lie in [0, 1], got values in [{lo:g}, {hi:g}] "
            "(pass sigmoid(logits), or a boolean prediction)"
        )


def _numpy_counts(prob: np.ndarray, target: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """Per-image (tp, fp, fn) for arrays of shape (B, ...)."""
    prob, target = np.asarray(prob), np.asarray(target)
    if prob.shape != target.shape:
        raise ValueError(f"prediction shape {prob.shape} != target shape {target.shape}")
    if prob.dtype == np.bool_:
        pred = prob
    elif np.issubdtype(prob.dtype, np.floating):
        if prob.size:
            _check_prob_range(float(prob.min()), float(prob.max()))
        pred = prob >= threshold
    elif np.issubdtype(prob.dtype, np.integer):
        pred = prob != 0
    else:
        raise TypeError(f"unsupported prediction dtype {prob.dtype}")
    truth = target if target.dtype == np.bool_ else target > 0
    batch = pred.shape[0]
    pred, truth = pred.reshape(batch, -1), truth.reshape(batch, -1)
    tp = np.count_nonzero(pred & truth, axis=1)
    fp = np.count_nonzero(pred & ~truth, axis=1)
    fn = np.count_nonzero(~pred & truth, axis=1)
    return tp, fp, fn


def _torch_counts(prob: Any, target: Any, threshold: float) -> tuple[np.ndarray, ...]:
    """Same as :func:`_numpy_counts` but counted on the tensors' device (only 3 x B numbers move)."""
    import torch

    if not isinstance(target, torch.Tensor):
        target = torch.as_tensor(np.asarray(target), device=prob.device)
    if not isinstance(prob, torch.Tensor):
        prob = torch.as_tensor(np.asarray(prob), device=target.device)
    if prob.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(prob.shape)} != target shape {tuple(target.shape)}")
    target = target.to(prob.device)
    if prob.dtype == torch.bool:
        pred = prob
    elif prob.is_floating_point():
        if prob.numel():
            lo, hi = torch.aminmax(prob.detach())
            _check_prob_range(float(lo), float(hi))
        pred = prob.detach() >= threshold
    else:
        pred = prob != 0
    truth = target if target.dtype == torch.bool else target > 0
    batch = pred.shape[0]
    pred, truth = pred.reshape(batch, -1), truth.reshape(batch, -1)
    counts = (
        torch.stack(
            [
                (pred & truth).sum(dim=1),
                (pred & ~truth).sum(dim=1),
                (~pred & truth).sum(dim=1),
            ]
        )
        .cpu()
        .numpy()
        .astype(np.int64)
    )
    return counts[0], counts[1], counts[2]


def binary_counts(prob: Any, target: Any, threshold: float = 0.5) -> tuple[np.ndarray, ...]:
    """Per-image ``(tp, fp, fn)`` int64 arrays for a batch ``(B, ...)`` of predictions and targets.

    See :meth:`BinaryMetrics.update` for how ``prob`` and ``target`` are binarised.
    """
    if _is_torch(prob) or _is_torch(target):
        return _torch_counts(prob, target, threshold)
    return _numpy_counts(prob, target, threshold)


def metrics_from_counts(
    tp: np.ndarray | int, fp: np.ndarray | int, fn: np.ndarray | int, empty_score: float = 1.0
) -> dict[str, np.ndarray]:
    """precision, recall, f1, iou (float64 arrays, element-wise) with the 0/0 rules of the module.

    Where TP + FP + FN = 0 (no crack in the truth, none predicted) all four are ``empty_score``;
    any other 0/0 (e.g. precision with nothing predicted but cracks in the truth) is 0.
    """
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)

    out = {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
    }
    empty = (tp + fp + fn) == 0
    for name in METRIC_NAMES:
        out[name] = np.where(empty, float(empty_score), out[name])
    return out


class BinaryMetrics:
    """Precision, recall, F1 and IoU of the crack class, accumulated image by image.

    Args:
        threshold: a float probability ``p`` is predicted crack when ``p >= threshold`` (so the
            default 0.5 counts a pixel at exactly 0.5 as crack).
        empty_score: value of all four metrics for an image (or, with ``reduction="dataset"``, a
            whole set) with no crack in the truth and none predicted -- 1.0 as in the official
            CrackSAM code: a correctly empty prediction is perfect.

    Inputs (numpy arrays or torch tensors, on any device):

    * ``prob``: float crack probabilities in [0, 1] (thresholded as above; values outside
      [0, 1], e.g. logits, raise ``ValueError``); or a boolean prediction, used as is; or an
      integer mask, where nonzero = crack.
    * ``target``: nonzero / True = crack (``target > 0``).

    ``update(prob, target)`` takes one image (H x W, or any shape), ``update_batch`` a batch
    (B x H x W, each of the B items one image).  Torch inputs are counted on their device.
    """

    def __init__(self, threshold: float = 0.5, empty_score: float = 1.0) -> None:
        if not 0.0 <= float(threshold) <= 1.0:
            raise InvalidValueError(f"threshold must lie in [0, 1], got {threshold}")
        if not 0.0 <= float(empty_score) <= 1.0:
            raise InvalidValueError(f"empty_score must lie in [0, 1], got {empty_score}")
        self.threshold = float(threshold)
        self.empty_score = float(empty_score)
        self.reset()

    def reset(self) -> None:
        self._tp: list[np.ndarray] = []
        self._fp: list[np.ndarray] = []
        self._fn: list[np.ndarray] = []

    def __len__(self) -> int:
        return int(sum(len(a) for a in self._tp))

    def update(self, prob: Any, target: Any) -> None:
        """Add one image."""
        if _is_torch(prob) or _is_torch(target):
            self.update_batch(prob[None], target[None])
        else:
            self.update_batch(np.asarray(prob)[None], np.asarray(target)[None])

    def update_batch(self, prob: Any, target: Any) -> None:
        """Add a batch of images (B x H x W; the first axis indexes images)."""
        if not (_is_torch(prob) or _is_torch(target)):
            prob, target = np.asarray(prob), np.asarray(target)
        if len(prob.shape) < 1:
            raise ValueError("update_batch needs an array with a batch axis (B x H x W)")
        tp, fp, fn = binary_counts(prob, target, self.threshold)
        self._tp.append(tp)
        self._fp.append(fp)
        self._fn.append(fn)

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-image ``(tp, fp, fn)`` int64 arrays, in update order."""

        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

        return cat(self._tp), cat(self._fp), cat(self._fn)

    def select(self, keep: Any) -> BinaryMetrics:
        """The images where ``keep`` (one bool per image, in update order) is true, as a new
        accumulator: sub-set scores without counting any pixel again."""
        keep = np.asarray(keep, bool)
        if keep.shape != (len(self),):
            raise ValueError(f"keep needs one value per image ({len(self)}), got shape {keep.shape}")
        out = BinaryMetrics(self.threshold, self.empty_score)
        tp, fp, fn = self.counts()
        out._tp, out._fp, out._fn = [tp[keep]], [fp[keep]], [fn[keep]]
        return out

    def per_image(self) -> dict[str, np.ndarray]:
        """Per-image precision, recall, f1, iou (arrays in update order), plus tp, fp, fn."""
        tp, fp, fn = self.counts()
        out: dict[str, np.ndarray] = dict(metrics_from_counts(tp, fp, fn, self.empty_score))
        out.update(tp=tp, fp=fp, fn=fn)
        return out

    def compute(self, reduction: Literal["dataset", "image"] = "dataset") -> dict[str, float]:
        """Reduce the accumulated images to ``precision``, ``recall``, ``f1``, ``iou``.

        * ``"dataset"``: TP, FP and FN are summed over all pixels of all images, then the
          formulas are applied once.  The result also holds ``tp``, ``fp``, ``fn`` (ints) and
          ``n_images``.  If the whole set has TP + FP + FN = 0 (no crack anywhere and none
          predicted) all four metrics are ``empty_score``; another 0/0 (e.g. nothing predicted
          anywhere, so precision = 0/0) is 0.
        * ``"image"``: the formulas are applied per image and the values averaged over images
          (plus ``n_images``).  An image with an empty truth *and* an empty prediction scores
          ``empty_score`` on all four metrics.  Any other 0/0 is 0: an empty prediction on an
          image with cracks has precision 0 (and recall, F1, IoU 0); a non-empty prediction on
          an image without cracks has recall 0 (and precision, F1, IoU 0, since TP = 0).

        With no image at all, the metrics are NaN.
        """
        tp, fp, fn = self.counts()
        n = len(tp)
        if reduction == "dataset":
            if n == 0:
                values = dict.fromkeys(METRIC_NAMES, float("nan"))
            else:
                m = metrics_from_counts(tp.sum(), fp.sum(), fn.sum(), self.empty_score)
                values = {k: float(v) for k, v in m.items()}
            values.update(tp=int(tp.sum()), fp=int(fp.sum()), fn=int(fn.sum()), n_images=n)
            return values
        if reduction == "image":
            if n == 0:
                values = dict.fromkeys(METRIC_NAMES, float("nan"))
            else:
                m = metrics_from_counts(tp, fp, fn, self.empty_score)
                values = {k: float(np.mean(v)) for k, v in m.items()}
            values["n_images"] = n
            return values
        raise InvalidValueError(f"reduction must be 'dataset' or 'image', got {reduction!r}")
