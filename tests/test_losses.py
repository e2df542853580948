"""Loss terms against references written independently (SciPy morphology, explicit formulas):
the edges that mutation testing of ``cracksam.training.losses`` found unchecked."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from cracksam.training.losses import (
    CrackLoss,
    _soft_skeleton,
    channel_wise_distillation_loss,
    skeleton_recall_loss,
    soft_cldice_loss,
    soft_dice_loss,
)

_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def _reference_skeleton(x: np.ndarray, iterations: int) -> np.ndarray:
    """Shit et al. (CVPR 2021) soft skeleton with SciPy grey morphology: erosion = min over the
    3x3 cross, dilation = max over 3x3, both ignoring pixels outside the image."""
    def erode(t: np.ndarray) -> np.ndarray:
        return ndimage.grey_erosion(t, footprint=_CROSS, mode="constant", cval=np.inf)

    def dilate(t: np.ndarray) -> np.ndarray:
        return ndimage.grey_dilation(t, size=(3, 3), mode="constant", cval=-np.inf)

    skel = np.maximum(x - dilate(erode(x)), 0)
    for _ in range(iterations):
        x = erode(x)
        delta = np.maximum(x - dilate(erode(x)), 0)
        skel = skel + np.maximum(delta - skel * delta, 0)
    return skel


def _soft_mask(seed: int, shape: tuple[int, int] = (40, 48)) -> np.ndarray:
    """A smooth map in [0, 1] with blobs wider than 2 x 5 iterations (so every iteration matters)."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random(shape), 4)
    x = (x - x.min()) / (x.max() - x.min())
    x[10:34, 8:36] = np.maximum(x[10:34, 8:36], 0.9)  # a 24 x 28 block: still eroding at step 5
    return x.astype(np.float32)


def test_soft_skeleton_matches_scipy_morphology() -> None:
    """Mutants killed: a sign flipped in erode (either pooling direction), dilation with a 1-px
    kernel, ``x + dilate(...)`` instead of ``-``, the skeleton update with ``-`` or ``+``."""
    for seed in range(3):
        x = _soft_mask(seed)
        got = _soft_skeleton(torch.from_numpy(x)[None, None], 5)[0, 0].numpy()
        np.testing.assert_allclose(got, _reference_skeleton(x, 5), atol=1e-5)
        assert got.max() > 0.1  # a non-trivial skeleton
    line = np.zeros((9, 12), np.float32)
    line[4, 2:10] = 1.0  # a 1-px line is its own skeleton
    np.testing.assert_allclose(_soft_skeleton(torch.from_numpy(line)[None, None], 5)[0, 0].numpy(), line)


def _logits_from_prob(prob: np.ndarray) -> torch.Tensor:
    """Two-class logits whose softmax crack probability is ``prob``."""
    p = torch.from_numpy(prob).double().clamp(1e-6, 1 - 1e-6)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))])[None].float()


def test_soft_cldice_matches_its_formula() -> None:
    """1 - 2·Tprec·Tsens / (Tprec + Tsens) with Tprec = Σ S(p)·g / Σ S(p), Tsens = Σ S(g)·p / Σ S(g),
    S = the reference skeleton with 5 iterations (the default).  Mutants killed: eps subtracted,
    ``2 / tprec`` for ``2 * tprec``, another number of iterations."""
    prob = _soft_mask(4)
    truth = (_soft_mask(5) > 0.5).astype(np.float32)
    sp, st = _reference_skeleton(prob, 5), _reference_skeleton(truth, 5)
    tprec = (sp * truth).sum() / sp.sum()
    tsens = (st * prob).sum() / st.sum()
    assert 0.1 < tprec < 0.95 and 0.1 < tsens < 0.95  # neither is 1: the product form matters
    want = 1 - 2 * tprec * tsens / (tprec + tsens)
    got = float(soft_cldice_loss(_logits_from_prob(prob), torch.from_numpy(truth)[None].long()))
    assert got == pytest.approx(want, abs=1e-4)
    # Nothing to find and nothing found: a perfect score, not eps / -eps.
    empty = torch.zeros(1, 16, 16, dtype=torch.long)
    background = torch.stack([torch.full((16, 16), 20.0), torch.full((16, 16), -20.0)])[None]
    assert float(soft_cldice_loss(background, empty)) == pytest.approx(0.0, abs=1e-3)


def test_skeleton_recall_of_an_empty_skeleton_is_zero() -> None:
    """No centre line to cover: nothing is missed (eps / eps), whatever is predicted."""
    logits = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    assert float(skeleton_recall_loss(logits, torch.zeros(2, 8, 8))) == pytest.approx(0.0, abs=1e-6)


def test_dice_defaults_and_an_image_without_cracks() -> None:
    """The default mode is the paper's (crack class only); a target without any crack pixel still
    has both classes in the one-hot encoding (num_classes from the logits, not the target)."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 6, 7, generator=g)
    target = (torch.rand(2, 6, 7, generator=g) > 0.7).long()
    assert soft_dice_loss(logits, target) == soft_dice_loss(logits, target, "crack")
    assert soft_dice_loss(logits, target) != pytest.approx(float(soft_dice_loss(logits, target, "mean")))
    empty = torch.zeros(2, 6, 7, dtype=torch.long)
    p1 = logits.softmax(1)[:, 1].sum()
    assert float(soft_dice_loss(logits, empty)) == pytest.approx(float(1 - 1e-5 / (p1 + 1e-5)), rel=1e-6)
    total, ce, dice = CrackLoss()(logits, target)  # paper defaults: λ = 0.2, crack Dice
    assert float(total) == pytest.approx(float(0.2 * F.cross_entropy(logits, target)
                                               + 0.8 * soft_dice_loss(logits, target, "crack")), rel=1e-6)


def test_crack_loss_checks_and_records_its_terms() -> None:
    for weight in (0.0, 1.0):
        assert CrackLoss(weight).ce_weight == weight
    with pytest.raises(ValueError, match=r"^ce_weight must be in \[0, 1\], got 1.5$"):
        CrackLoss(1.5)
    for kw in ({"skeleton_recall": -1.0}, {"cldice": -1.0}):
        with pytest.raises(ValueError, match="^loss weights must be >= 0$"):
            CrackLoss(**kw)
    loss = CrackLoss(0.2, skeleton_recall=1.0)
    assert loss.last_terms == {}
    g = torch.Generator().manual_seed(2)
    logits, target = torch.randn(1, 2, 12, 12, generator=g), (torch.rand(1, 12, 12, generator=g) > 0.6).long()
    with pytest.raises(ValueError, match=r"^skeleton recall needs skeleton targets \(the dataset's skeleton option\)$"):
        loss(logits, target)
    skeleton = target.clone()
    loss(logits, target, skeleton)
    assert set(loss.last_terms) == {"skeleton_recall"}  # no clDice term at weight 0
    assert float(loss.last_terms["skeleton_recall"]) == pytest.approx(float(skeleton_recall_loss(logits, skeleton)))
    both = CrackLoss(0.2, skeleton_recall=1.0, cldice=0.5)
    both(logits, target, skeleton)
    assert set(both.last_terms) == {"skeleton_recall", "cldice"}
    assert float(both.last_terms["cldice"]) == pytest.approx(float(soft_cldice_loss(logits, target)))


def test_distillation_defaults_resizing_and_messages() -> None:
    """T = 3 by default (the paper); a smaller student is resized bilinearly with
    ``align_corners=False``; wrong shapes and temperatures name the problem."""
    g = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(2, 2, 4, 4, generator=g), torch.randn(2, 2, 8, 8, generator=g)
    assert channel_wise_distillation_loss(student, teacher) == channel_wise_distillation_loss(student, teacher, 3.0)
    up = F.interpolate(student, size=(8, 8), mode="bilinear", align_corners=False)
    assert float(channel_wise_distillation_loss(student, teacher)) == pytest.approx(
        float(channel_wise_distillation_loss(up, teacher)), rel=1e-6)
    with pytest.raises(ValueError, match=r"^student \(1, 2, 8\) and teacher \(1, 2, 8, 8\) logits do not match$"):
        channel_wise_distillation_loss(torch.zeros(1, 2, 8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"^temperature must be > 0, got -1.0$"):
        channel_wise_distillation_loss(teacher, teacher, -1.0)
