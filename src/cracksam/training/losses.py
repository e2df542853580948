"""Training loss of the paper (Eq. 6-8): ``L = λ·CE + (1 − λ)·Dice`` with λ = 0.2."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cracksam.errors import InvalidValueError

DiceMode = Literal["crack", "mean"]


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, mode: DiceMode = "crack", eps: float = 1e-5
) -> torch.Tensor:
    """``1 − (2·Σ p·g + ε) / (Σ p + Σ g + ε)`` with p the softmax probability, summed over the
    whole batch.

    logits: (B, C, H, W); target: (B, H, W) class indices.  ``crack`` scores class 1 only (the
    paper); ``mean`` averages the loss over all classes (the official code, SAMed's DiceLoss).
    """
    probs = logits.float().softmax(dim=1)
    onehot = F.one_hot(target.long(), num_classes=logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    per_class = 1.0 - (2.0 * inter + eps) / (denom + eps)
    return per_class[1] if mode == "crack" else per_class.mean()


def skeleton_recall_loss(logits: torch.Tensor, skeleton: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Skeleton recall (Kirchhoff et al., ECCV 2024): ``1 − Σ p·K / (Σ K + ε)`` over the batch.

    logits: (B, 2, H, W); skeleton: (B, H, W) in {0, 1}, the (dilated) skeleton of the ground
    truth from :func:`cracksam.data.skeleton.skeleton_target`.  p is the crack probability.  0 when
    the whole centre line is covered with certainty; a missed branch raises it by its share of the
    skeleton whatever the branch's width, which is what makes it sensitive to thin cracks.
    """
    prob = logits.float().softmax(dim=1)[:, 1]
    k = skeleton.to(prob.dtype)
    return 1.0 - ((prob * k).sum() + eps) / (k.sum() + eps)


def _soft_skeleton(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Soft skeleton by iterated min/max pooling (Shit et al., CVPR 2021), x: (B, 1, H, W) in [0, 1]."""
    def erode(t: torch.Tensor) -> torch.Tensor:
        return torch.minimum(-F.max_pool2d(-t, (3, 1), 1, (1, 0)), -F.max_pool2d(-t, (1, 3), 1, (0, 1)))

    def dilate(t: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(t, 3, 1, 1)

    skel = F.relu(x - dilate(erode(x)))
    for _ in range(iterations):
        x = erode(x)
        delta = F.relu(x - dilate(erode(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def soft_cldice_loss(logits: torch.Tensor, target: torch.Tensor, iterations: int = 5,
                     eps: float = 1e-5) -> torch.Tensor:
    """``1 − clDice`` with soft skeletons of prediction and truth (Shit et al., CVPR 2021)."""
    prob = logits.float().softmax(dim=1)[:, 1:2]
    truth = target.float().unsqueeze(1)
    sp, st = _soft_skeleton(prob, iterations), _soft_skeleton(truth, iterations)
    tprec = ((sp * truth).sum() + eps) / (sp.sum() + eps)
    tsens = ((st * prob).sum() + eps) / (st.sum() + eps)
    return 1.0 - 2.0 * tprec * tsens / (tprec + tsens)


class CrackLoss(nn.Module):
    """``ce_weight · CE + (1 − ce_weight) · Dice [+ w_sr · skeleton recall] [+ w_cl · clDice]``;
    returns (total, ce, dice).  The extra terms are off by default (the paper's loss)."""

    def __init__(self, ce_weight: float = 0.2, dice: DiceMode = "crack", skeleton_recall: float = 0.0,
                 cldice: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= ce_weight <= 1.0:
            raise InvalidValueError(f"ce_weight must be in [0, 1], got {ce_weight}")
        if skeleton_recall < 0 or cldice < 0:
            raise InvalidValueError("loss weights must be >= 0")
        self.ce_weight = ce_weight
        self.dice = dice
        self.skeleton_recall = skeleton_recall
        self.cldice = cldice
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                skeleton: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ce = F.cross_entropy(logits.float(), target.long())
        dice = soft_dice_loss(logits, target, self.dice)
        total = self.ce_weight * ce + (1.0 - self.ce_weight) * dice
        self.last_terms = {}
        if self.skeleton_recall > 0:
            if skeleton is None:
                raise InvalidValueError("skeleton recall needs skeleton targets (the dataset's skeleton option)")
            sr = skeleton_recall_loss(logits, skeleton)
            self.last_terms["skeleton_recall"] = sr.detach()
            total = total + self.skeleton_recall * sr
        if self.cldice > 0:
            cl = soft_cldice_loss(logits, target)
            self.last_terms["cldice"] = cl.detach()
            total = total + self.cldice * cl
        return total, ce, dice


def channel_wise_distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float = 3.0
) -> torch.Tensor:
    """Channel-wise knowledge distillation (Shu et al. 2021; CrackSAM paper Eq. B.1-B.2).

    Each channel's logits are turned into a distribution over all H·W positions with a softmax at
    temperature T; ``L = T²/C · Σ_c KL(P_teacher,c ‖ P_student,c)``, averaged over the batch.  The
    student's logits are resized (bilinear) to the teacher's size when they differ.

    student, teacher: (B, C, H, W) logits.  The teacher gets no gradient.
    """
    if student.ndim != 4 or teacher.ndim != 4 or student.shape[:2] != teacher.shape[:2]:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} logits do not match")
    if temperature <= 0:
        raise InvalidValueError(f"temperature must be > 0, got {temperature}")
    if student.shape[-2:] != teacher.shape[-2:]:
        student = F.interpolate(student, size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    b, c = student.shape[:2]
    s = student.float().reshape(b, c, -1) / temperature
    t = teacher.detach().float().reshape(b, c, -1) / temperature
    log_ps = F.log_softmax(s, dim=-1)
    log_pt = F.log_softmax(t, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=-1)  # (B, C)
    return temperature**2 / c * kl.sum(dim=1).mean()
