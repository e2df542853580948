"""Skeleton-recall and soft-clDice loss terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cracksam.data.skeleton import skeleton_target
from cracksam.training.losses import CrackLoss, skeleton_recall_loss, soft_cldice_loss


def _t_shape() -> np.ndarray:
    """A 'T' of 1-px... 3-px lines: a bar (row 10) and a stem (column 20)."""
    m = np.zeros((32, 40), np.uint8)
    m[9:12, 4:36] = 1
    m[11:28, 19:22] = 1
    return m


def _logits(mask: np.ndarray, confidence: float = 20.0) -> torch.Tensor:
    crack = torch.from_numpy(mask.astype(np.float32)) * 2 - 1
    return torch.stack([-crack, crack])[None] * confidence / 2


def test_skeleton_recall_is_perfect_for_the_truth_and_drops_for_a_missing_branch() -> None:
    """Recall 1 (loss 0) for a prediction equal to the truth; without the stem the loss is the
    stem's share of the skeleton (mutant: normalising by the prediction instead of the skeleton)."""
    truth = _t_shape()
    skel = torch.from_numpy(skeleton_target(truth, dilate=0))[None]
    assert float(skeleton_recall_loss(_logits(truth), skel)) == pytest.approx(0.0, abs=1e-4)
    no_stem = truth.copy()
    no_stem[12:, :] = 0
    expected = float(skel[0, 12:].sum() / skel.sum())
    assert 0.2 < expected < 0.6
    assert float(skeleton_recall_loss(_logits(no_stem), skel)) == pytest.approx(expected, abs=1e-3)
    # a prediction covering everything also has full recall: the term is recall only
    assert float(skeleton_recall_loss(_logits(np.ones_like(truth)), skel)) == pytest.approx(0.0, abs=1e-4)


def test_skeleton_recall_weighs_a_thin_branch_like_a_thick_one() -> None:
    """Missing a 1-px branch costs as much recall as missing an equally long 5-px branch, whereas
    Dice barely notices the thin one: what makes the term useful for thin cracks."""
    m = np.zeros((40, 60), np.uint8)
    m[5:10, 5:55] = 1  # thick, 50 long
    m[30, 5:55] = 1  # thin, 50 long
    skel = torch.from_numpy(skeleton_target(m, dilate=0))[None]
    miss_thin, miss_thick = m.copy(), m.copy()
    miss_thin[30] = 0
    miss_thick[5:10] = 0
    l_thin = float(skeleton_recall_loss(_logits(miss_thin), skel))
    l_thick = float(skeleton_recall_loss(_logits(miss_thick), skel))
    assert l_thin == pytest.approx(l_thick, abs=0.08)
    assert l_thin > 0.35


def test_soft_cldice() -> None:
    truth = _t_shape()
    target = torch.from_numpy(truth)[None].long()
    assert float(soft_cldice_loss(_logits(truth), target)) == pytest.approx(0.0, abs=0.02)
    no_stem = truth.copy()
    no_stem[12:, :] = 0
    assert float(soft_cldice_loss(_logits(no_stem), target)) > 0.1


def test_crack_loss_adds_weighted_terms() -> None:
    truth = _t_shape()
    target = torch.from_numpy(truth)[None].long()
    skel = torch.from_numpy(skeleton_target(truth))[None]
    logits = torch.randn(1, 2, 32, 40)
    base, ce, dice = CrackLoss(0.2)(logits, target)
    assert float(base) == pytest.approx(float(0.2 * ce + 0.8 * dice))
    with_sr, _, _ = CrackLoss(0.2, skeleton_recall=2.0)(logits, target, skel)
    assert float(with_sr - base) == pytest.approx(2.0 * float(skeleton_recall_loss(logits, skel)), rel=1e-5)
    with_cl, _, _ = CrackLoss(0.2, cldice=0.5)(logits, target)
    assert float(with_cl - base) == pytest.approx(0.5 * float(soft_cldice_loss(logits, target)), rel=1e-5)
    with pytest.raises(ValueError, match="skeleton targets"):
        CrackLoss(0.2, skeleton_recall=1.0)(logits, target)
