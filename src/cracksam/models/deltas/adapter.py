"""Adapter delta (CrackSAM paper, Eq. 3-4; the design of Medical SAM Adapter).

Each ViT block gets two bottleneck adapters ``up(GELU(down(x)))`` (d -> m -> d, with biases):

* a *sequential* one after the attention, with its own residual:
  ``a = Attn(LN1(x)); a = a + Adapter_seq(a); x = x + a``
* a *parallel* one beside the MLP, scaled by ``s``:
  ``h = LN2(x); x = x + MLP(h) + s * Adapter_mlp(h)``

The up-projections start at zero so that an untrained adapter leaves SAM's output unchanged;
the parameter count (what the paper reports) does not depend on the initialisation.

The adapters are attached as children of SAM's own ``attn`` and ``mlp`` modules, whose classes
are switched to subclasses that call the original ``forward`` first (the same trick as
``torch.nn.utils.parametrize``).  State-dict keys of the base model therefore stay exactly those
of the official checkpoints, and the adapter keys read ``blocks.3.attn.adapter.down.weight``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from segment_anything.modeling.common import MLPBlock
from segment_anything.modeling.image_encoder import Attention, ImageEncoderViT
from torch import nn

from cracksam.errors import ConfigError


@dataclass
class AdapterConfig:
    """Bottleneck width ``m`` and the scale ``s`` of the MLP-parallel adapter."""

    bottleneck: int = 32
    scale: float = 0.2
    zero_init: bool = True

    def __post_init__(self) -> None:
        if self.bottleneck < 1:
            raise ConfigError(f"adapter bottleneck must be >= 1, got {self.bottleneck}")


class Adapter(nn.Module):
    """``up(GELU(down(x)))``; shape-preserving on the last dimension: (..., d) -> (..., d)."""

    def __init__(self, dim: int, bottleneck: int, zero_init: bool = True) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, dim)
        if zero_init:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class AttentionWithAdapter(Attention):
    """SAM attention followed by a sequential adapter with its own residual connection."""

    adapter: Adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return x + self.adapter(x)


class MLPWithAdapter(MLPBlock):
    """SAM's MLP plus a parallel adapter on the same (normalised) input, scaled by ``s``."""

    adapter: Adapter
    adapter_scale: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.adapter_scale * self.adapter(x)


def inject_adapter(encoder: ImageEncoderViT, config: AdapterConfig) -> ImageEncoderViT:
    """Add the two adapters to every block of ``encoder``, in place; returns ``encoder``."""
    for block in encoder.blocks:
        if isinstance(block.attn, AttentionWithAdapter):
            raise ConfigError("the encoder already has adapters")
        dim = block.attn.qkv.in_features
        # Build on the device of the block so that meta-device models stay on meta.
        device = block.attn.qkv.weight.device
        dtype = block.attn.qkv.weight.dtype
        block.attn.adapter = Adapter(dim, config.bottleneck, config.zero_init).to(device=device, dtype=dtype)
        block.attn.__class__ = AttentionWithAdapter
        block.mlp.adapter = Adapter(dim, config.bottleneck, config.zero_init).to(device=device, dtype=dtype)
        block.mlp.adapter_scale = float(config.scale)
        block.mlp.__class__ = MLPWithAdapter
    return encoder


def adapter_parameter_names(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_parameters() if ".adapter." in n]
