"""Small fixed models for tests of the plumbing around a network."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FixedConfig:
    image_size: int = 64


class DarknessModel(nn.Module):
    """Calls dark pixels cracks: a fixed, known predictor (and exportable) for checking scoring,
    tiling and runtimes without training a network."""

    def __init__(self, image_size: int = 64) -> None:
        super().__init__()
        self.config = FixedConfig(image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        crack = (100.0 - x.mean(dim=1, keepdim=True)) / 5.0
        return torch.cat([torch.zeros_like(crack), crack], dim=1)
