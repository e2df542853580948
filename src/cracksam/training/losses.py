"""Training loss of the paper (Eq. 6-8): ``L = λ·CE + (1 − λ)·Dice`` with λ = 0.2."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

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


class CrackLoss(nn.Module):
    """``ce_weight · CE + (1 − ce_weight) · Dice``; returns (total, ce, dice)."""

    def __init__(self, ce_weight: float = 0.2, dice: DiceMode = "crack") -> None:
        super().__init__()
        if not 0.0 <= ce_weight <= 1.0:
            raise ValueError(f"ce_weight must be in [0, 1], got {ce_weight}")
        self.ce_weight = ce_weight
        self.dice = dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ce = F.cross_entropy(logits.float(), target.long())
        dice = soft_dice_loss(logits, target, self.dice)
        return self.ce_weight * ce + (1.0 - self.ce_weight) * dice, ce, dice
