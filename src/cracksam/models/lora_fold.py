"""LoRA factors of 1×1 convolutions folded into the convolutions' weights, without peft.

Training with ``encoder_delta.kind: lora`` (:mod:`cracksam.training.encoder_delta`) wraps 1×1
convolutions of a network's encoder in peft's LoRA layers.  Their state-dict keys then read
``<conv>.base_layer.weight`` (and ``.bias``), ``<conv>.lora_A.default.weight`` (r, in, 1, 1) and
``<conv>.lora_B.default.weight`` (out, r, 1, 1).  :func:`fold_lora` turns such a state dict into the
plain network's: ``W = W0 + scaling · B A`` (what peft's own merge computes for a 1×1 convolution),
the ``base_layer`` keys renamed back.  So the saved ``best/`` model, and a training checkpoint turned
into a model folder, are ordinary models of their architecture: loading them needs no peft.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from cracksam.errors import CheckpointError

# Key of the scaling (alpha / rank) in a training checkpoint's model record (run_checkpoint.MODEL_KEY).
LORA_SCALING_KEY = "lora_scaling"
ADAPTER = "default"  # peft's name for the one adapter


def fold_lora(weights: Mapping[str, torch.Tensor], scaling: object) -> dict[str, torch.Tensor]:
    """``weights`` with every LoRA pair folded into its 1×1 convolution and the LoRA keys gone.

    Raises :class:`CheckpointError` (one line) for a scaling that is not a finite number, a LoRA
    tensor of another kind than peft's ``lora_A``/``lora_B`` of the default adapter, a factor
    without its partner or base weight, or a convolution that is not 1×1."""
    if isinstance(scaling, bool) or not isinstance(scaling, int | float) or not math.isfinite(scaling):
        raise CheckpointError(f"LoRA weights without a valid {LORA_SCALING_KEY} (got {scaling!r}); cannot fold them")
    suffix_a, suffix_b = f".lora_A.{ADAPTER}.weight", f".lora_B.{ADAPTER}.weight"
    prefixes = {key[: -len(suffix_a)] for key in weights if key.endswith(suffix_a)}
    folded: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        if key.endswith((suffix_a, suffix_b)):
            continue
        if ".lora_" in key:
            raise CheckpointError(f"{key}: a LoRA tensor this fold does not know (only lora_A/lora_B of "
                                  f"the {ADAPTER!r} adapter)")
        folded[key.replace(".base_layer.", ".")] = value
    for prefix in sorted(prefixes):
        key_b, key_w = prefix + suffix_b, prefix + ".weight"
        if key_b not in weights or key_w not in folded:
            missing = "its B factor" if key_b not in weights else "a base weight"
            raise CheckpointError(f"{prefix}: LoRA factor A without {missing}")
        a, b, w = weights[prefix + suffix_a], weights[key_b], folded[key_w]
        if w.ndim != 4 or tuple(w.shape[2:]) != (1, 1) or tuple(a.shape[2:]) != (1, 1):
            raise CheckpointError(f"{prefix}: LoRA is folded into 1x1 convolutions only, got weight {tuple(w.shape)}")
        delta = (b.flatten(1).float() @ a.flatten(1).float()).view(w.shape) * scaling
        folded[key_w] = (w.float() + delta).to(w.dtype)
    orphans = {key[: -len(suffix_b)] for key in weights if key.endswith(suffix_b)} - prefixes
    if orphans:
        raise CheckpointError(f"{sorted(orphans)[0]}: LoRA factor B without its A factor")
    return folded
