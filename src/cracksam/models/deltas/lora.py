"""LoRA delta (CrackSAM paper, Eq. 5): ``W = W0 + B A`` on q, k, v and/or o of every block.

SAM fuses q, k and v into one ``qkv`` linear (out = 3·d); a LoRA target ``q`` adds a rank-r
update to the first d output rows only, ``k`` to the second and ``v`` to the third; ``o`` is the
``proj`` linear after attention.  A starts random (Kaiming-uniform, as in the LoRA paper), B at
zero, so an untrained delta leaves the model's output unchanged.

As with adapters, the linear keeps its ``weight`` and ``bias`` (official keys unchanged) and only
its class is switched to :class:`LoRALinear`; :func:`merge_lora` folds ``B A`` into ``weight`` and
switches back to a plain ``nn.Linear`` for inference and export.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from segment_anything.modeling.image_encoder import ImageEncoderViT
from torch import nn

from cracksam.errors import ConfigError

LORA_TARGETS = ("q", "k", "v", "o")


@dataclass
class LoRAConfig:
    rank: int = 4
    targets: list[str] = field(default_factory=lambda: ["q", "v"])
    # Multiplies B·A; the paper uses plain W0 + BA, i.e. 1.0.
    scaling: float = 1.0

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"LoRA rank must be >= 1, got {self.rank}")
        self.targets = list(self.targets)
        bad = [t for t in self.targets if t not in LORA_TARGETS]
        if bad or not self.targets:
            raise ConfigError(f"LoRA targets must be a non-empty subset of {LORA_TARGETS}, got {self.targets}")
        if len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"LoRA targets repeat: {self.targets}")
        # Canonical order, so configs that differ only in order compare equal.
        self.targets = [t for t in LORA_TARGETS if t in self.targets]


class LoRALinear(nn.Linear):
    """An ``nn.Linear`` whose output rows are split into ``len(slots)`` equal slices, some of
    which carry a low-rank update.

    ``lora_A`` and ``lora_B`` are ModuleDicts of per-slice factors keyed by target name
    (``lora_A[t]``: (r, in), ``lora_B[t]``: (out/len(slots), r)).
    """

    slots: tuple[str, ...]
    lora_A: nn.ParameterDict
    lora_B: nn.ParameterDict
    lora_scaling: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        width = self.out_features // len(self.slots)
        parts = []
        for slot in self.slots:
            if slot in self.lora_A:
                parts.append((x @ self.lora_A[slot].t()) @ self.lora_B[slot].t() * self.lora_scaling)
            else:
                parts.append(out.new_zeros(*out.shape[:-1], width))
        return out + torch.cat(parts, dim=-1)

    def delta_weight(self) -> torch.Tensor:
        """The dense ``B A`` update, (out, in)."""
        width = self.out_features // len(self.slots)
        rows = []
        for slot in self.slots:
            if slot in self.lora_A:
                rows.append(self.lora_B[slot] @ self.lora_A[slot] * self.lora_scaling)
            else:
                rows.append(self.weight.new_zeros(width, self.in_features))
        return torch.cat(rows, dim=0)


def _make_lora(linear: nn.Linear, slots: tuple[str, ...], targets: Sequence[str], config: LoRAConfig) -> None:
    width = linear.out_features // len(slots)
    factory: dict[str, Any] = {"device": linear.weight.device, "dtype": linear.weight.dtype}
    # The same object, seen as the class it becomes below, so its attributes are the typed ones.
    lora = cast(LoRALinear, linear)
    lora.lora_A = nn.ParameterDict()
    lora.lora_B = nn.ParameterDict()
    for slot in slots:
        if slot not in targets:
            continue
        a = torch.empty(config.rank, linear.in_features, **factory)
        if a.device.type != "meta":
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        lora.lora_A[slot] = nn.Parameter(a)
        lora.lora_B[slot] = nn.Parameter(torch.zeros(width, config.rank, **factory))
    lora.slots = slots
    lora.lora_scaling = float(config.scaling)
    linear.__class__ = LoRALinear


def inject_lora(encoder: ImageEncoderViT, config: LoRAConfig) -> ImageEncoderViT:
    """Add LoRA factors to the attention of every block of ``encoder``, in place."""
    for block in encoder.blocks:
        attn = block.attn
        if isinstance(attn.qkv, LoRALinear) or isinstance(attn.proj, LoRALinear):
            raise ConfigError("the encoder already has LoRA")
        qkv_targets = [t for t in config.targets if t in ("q", "k", "v")]
        if qkv_targets:
            _make_lora(attn.qkv, ("q", "k", "v"), qkv_targets, config)
        if "o" in config.targets:
            _make_lora(attn.proj, ("o",), ["o"], config)
    return encoder


@torch.no_grad()
def merge_lora(model: nn.Module) -> int:
    """Fold every LoRA update into its frozen weight and drop the factors; returns how many
    linears were merged.  The model computes the same function afterwards (to float rounding)."""
    merged = 0
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.weight += module.delta_weight()
            del module.lora_A, module.lora_B, module.slots, module.lora_scaling
            cast(nn.Module, module).__class__ = nn.Linear  # back to the plain class
            merged += 1
    return merged


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, LoRALinear) for m in model.modules())
