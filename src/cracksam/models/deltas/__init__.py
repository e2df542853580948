"""Parameter-efficient deltas for SAM's image encoder: a config plus a function that injects it.

``DeltaConfig.kind`` picks ``none`` (head-only fine-tuning), ``adapter``, ``lora``,
``adapter+lora`` or ``full`` (no delta: the whole encoder is trained); :func:`apply_delta`
injects the chosen ones into an encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from segment_anything.modeling.image_encoder import ImageEncoderViT

from cracksam.models.deltas.adapter import Adapter, AdapterConfig, inject_adapter
from cracksam.models.deltas.lora import LoRAConfig, LoRALinear, has_lora, inject_lora, merge_lora

DeltaKind = Literal["none", "adapter", "lora", "adapter+lora", "full"]
# "full" trains the whole encoder: the baseline that deltas are measured against, and the only
# sensible choice when the encoder starts from random weights (e.g. the tiny config on CPU).
DELTA_KINDS: tuple[str, ...] = ("none", "adapter", "lora", "adapter+lora", "full")


@dataclass
class DeltaConfig:
    kind: DeltaKind = "adapter"
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)

    @property
    def uses_adapter(self) -> bool:
        return self.kind in ("adapter", "adapter+lora")

    @property
    def uses_lora(self) -> bool:
        return self.kind in ("lora", "adapter+lora")

    def describe(self) -> str:
        parts = []
        if self.uses_adapter:
            parts.append(f"adapter(m={self.adapter.bottleneck}, s={self.adapter.scale:g})")
        if self.uses_lora:
            parts.append(f"lora(r={self.lora.rank}, {','.join(self.lora.targets)})")
        if self.kind == "full":
            return "full (whole encoder trained)"
        return " + ".join(parts) or "none (head only)"


def apply_delta(encoder: ImageEncoderViT, config: DeltaConfig) -> ImageEncoderViT:
    if config.uses_adapter:
        inject_adapter(encoder, config.adapter)
    if config.uses_lora:
        inject_lora(encoder, config.lora)
    return encoder


__all__ = [
    "DELTA_KINDS",
    "Adapter",
    "AdapterConfig",
    "DeltaConfig",
    "LoRAConfig",
    "LoRALinear",
    "apply_delta",
    "has_lora",
    "inject_adapter",
    "inject_lora",
    "merge_lora",
]
