"""A small hand-built conv network (no training) for runtime and quantisation tests: three
convolutions that call dark pixels cracks, so the first and last layers (kept in float by INT8)
and a middle one (quantised) all exist, with weights fixed by a seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class DarkConvNet(nn.Module):
    """ImageNet-normalised (B, 3, H, W) -> (B, 2, H, W) logits; any H, W (fully convolutional)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 2, 1)
        with torch.no_grad():
            self.c1.weight.copy_(torch.randn(8, 3, 3, 3, generator=g) * 0.02 - 1.0 / 27)  # minus the 3x3 mean
            self.c1.bias.copy_(torch.linspace(-0.6, 0.0, 8))
            self.c2.weight.copy_(torch.randn(8, 8, 3, 3, generator=g) * 0.02)
            self.c2.weight[range(8), range(8), 1, 1] += 1.0
            self.c2.bias.zero_()
            self.c3.weight.zero_()
            self.c3.weight[1] = 6.0 / 8
            self.c3.bias.copy_(torch.tensor([0.0, -1.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c3(torch.relu(self.c2(torch.relu(self.c1(x)))))


@dataclass
class RawConfig:
    image_size: int = 64


class RawDarkConvNet(nn.Module):
    """The same network on raw 0..255 RGB with a ``config.image_size``, as the exporters take."""

    def __init__(self, image_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.config = RawConfig(image_size)
        self.net = DarkConvNet(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 116.0) / 57.0)
