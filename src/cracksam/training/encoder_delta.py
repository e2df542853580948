"""Encoder deltas for conventional networks: the ``encoder_delta`` section of a training config.

The CrackSAM paper's recipe (a frozen pretrained encoder, small trained deltas, a trained decoder)
applied to a registry network with an smp encoder, such as the EfficientNet-Lite U-Nets:

* ``kind: none`` (default): no delta; the whole network trains (full fine-tuning, as before).
* ``kind: lora``: the encoder is frozen, and each chosen 1×1 convolution of it (by default every
  one: the pointwise expand and project convolutions of the inverted-residual blocks; never the
  stem or the depthwise convolutions) is wrapped in peft's LoRA layer, ``W0 + alpha/rank · B A``
  with ``B`` starting at zero, so the network computes at step 0 exactly what it did without the
  delta.  The decoder and the segmentation head train whole.  The encoder's batch norms are frozen
  too by default (``train_bn: false``): their affine weights do not train and they stay in eval
  mode, normalising with the pretrained running statistics, so the frozen encoder is one fixed
  function of its input as in the paper; ``train_bn: true`` trains their affine weights and lets
  them update their statistics (a common PEFT variant, a few thousand parameters more).

Saving: ``best/`` holds the plain network with the LoRA folded into its convolutions
(:func:`merge_encoder_delta`, :mod:`cracksam.models.lora_fold`): an ordinary model of the same
architecture that loads and predicts without peft.  ``last.ckpt`` keeps the LoRA factors (a resumed
run continues them) and records their scaling, so ``predict -m last.ckpt`` folds them the same way.
peft is an optional dependency (``pip install 'cracksam[peft]'``), needed only to train with a delta.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from cracksam.config import help_meta
from cracksam.errors import ConfigError
from cracksam.models.cracksam import CrackSAM
from cracksam.models.lora_fold import ADAPTER, LORA_SCALING_KEY, fold_lora
from cracksam.models.segmodels import SegModel, build_segmodel

ENCODER_DELTA_KINDS = ("none", "lora")
RECORD_ATTR = "encoder_delta_record"  # set on a model by apply_encoder_delta


@dataclass
class EncoderDeltaConfig:
    """``encoder_delta`` section of a training config: frozen encoder + LoRA on its 1×1 convolutions."""

    kind: Literal["none", "lora"] = field(default="none", metadata=help_meta(
        "none: the whole network trains (full fine-tuning); lora: the encoder is frozen, its 1x1 convolutions "
        "get trained LoRA deltas, the decoder and head train (conventional networks with an smp encoder)"))
    rank: int = field(default=8, metadata=help_meta("LoRA rank r of each 1x1 convolution's delta B A"))
    alpha: float = field(default=16.0, metadata=help_meta("LoRA alpha: the delta is scaled by alpha / rank"))
    dropout: float = field(default=0.0, metadata=help_meta("dropout on the LoRA branch's input while training"))
    targets: list[str] = field(default_factory=list, metadata=help_meta(
        "which 1x1 convolutions of the encoder get a delta, by name or the end of their name (peft's "
        "target_modules rule; e.g. [conv_pwl]: the project convolutions only); empty: every 1x1 convolution"))
    train_bn: bool = field(default=False, metadata=help_meta(
        "train the encoder's batch norms (affine weights and running statistics); false: frozen, in eval mode"))

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_DELTA_KINDS:
            raise ConfigError(f"encoder_delta.kind must be none or lora, got {self.kind!r}")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ConfigError(f"encoder_delta.rank must be an integer >= 1, got {self.rank!r}")
        if not self.alpha > 0:
            raise ConfigError(f"encoder_delta.alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"encoder_delta.dropout must be in [0, 1), got {self.dropout}")
        self.targets = list(self.targets)
        if any(not isinstance(t, str) or not t.strip(".") for t in self.targets):
            raise ConfigError(f"encoder_delta.targets must be module names, got {self.targets}")
        if len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"encoder_delta.targets repeat: {self.targets}")

    @property
    def enabled(self) -> bool:
        return self.kind != "none"


def pointwise_convs(encoder: nn.Module) -> list[str]:
    """Names (in ``encoder``) of its 1×1 convolutions without groups: what LoRA may target."""
    return [name for name, m in encoder.named_modules()
            if isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (1, 1) and m.groups == 1]


def _targets(encoder: nn.Module, wanted: list[str]) -> list[str]:
    convs = pointwise_convs(encoder)
    if not convs:
        raise ConfigError("encoder_delta: this network's encoder has no 1x1 convolution to put LoRA on")
    if not wanted:
        return convs
    chosen = []
    for target in wanted:
        hit = [name for name in convs if name == target or name.endswith("." + target)]
        if not hit:
            known = sorted({name.rsplit(".", 1)[-1] for name in convs})
            raise ConfigError(f"encoder_delta.targets: {target!r} names no 1x1 convolution of the encoder "
                              f"(their names end in: {', '.join(known)})")
        chosen += hit
    return [name for name in convs if name in set(chosen)]  # encoder order, once each


def _keep_eval(module: nn.Module, args: Any) -> None:
    """Forward pre-hook of a frozen batch norm: normalise with its running statistics even while
    the rest of the network trains (``model.train()`` sets the flag back before each training pass)."""
    module.training = False


def _encoder_of(model: nn.Module) -> nn.Module:
    encoder = getattr(getattr(model, "net", None), "encoder", None)
    if not isinstance(model, SegModel) or not isinstance(encoder, nn.Module):
        arch = getattr(getattr(model, "config", None), "arch", type(model).__name__)
        raise ConfigError(f"encoder_delta.kind lora needs a registry network with an smp encoder (such as "
                          f"unet_efficientnet_lite0); {arch} has none")
    return encoder


def apply_encoder_delta(model: nn.Module, config: EncoderDeltaConfig) -> nn.Module:
    """``model`` with its encoder frozen and LoRA injected (in place; returned), or ``model`` as it
    is for ``kind: none``.  The model then carries a record (:func:`delta_record`) of the delta."""
    if not config.enabled:
        return model
    encoder = _encoder_of(model)
    if getattr(model, RECORD_ATTR, None) is not None:
        raise ConfigError("this model already carries an encoder delta")
    targets = _targets(encoder, config.targets)
    try:
        from peft import LoraConfig, inject_adapter_in_model
        from peft.tuners.lora import LoraLayer
    except ImportError:
        raise ConfigError("encoder_delta.kind lora needs peft: pip install 'cracksam[peft]'") from None
    for p in encoder.parameters():
        p.requires_grad_(False)
    # peft annotates lora_alpha as int; a float scales the same (scaling = alpha / r).
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,  # type: ignore[arg-type]
                      target_modules=targets, bias="none")
    inject_adapter_in_model(lora, encoder, adapter_name=ADAPTER)
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        if config.train_bn:
            norm.requires_grad_(True)
        else:
            norm.register_forward_pre_hook(_keep_eval)
    for name, p in encoder.named_parameters():  # peft froze the rest of the encoder; check, never assume
        if p.requires_grad != (".lora_" in name or (config.train_bn and _is_norm(encoder, name))):
            raise RuntimeError(f"encoder_delta: {name} has requires_grad={p.requires_grad}")
    scales = {float(m.scaling[ADAPTER]) for m in encoder.modules() if isinstance(m, LoraLayer)}
    if len(scales) != 1:
        raise RuntimeError(f"encoder_delta: expected one LoRA scaling, got {sorted(scales)}")
    counts = parameter_counts(model)
    setattr(model, RECORD_ATTR, {
        "kind": config.kind, "rank": config.rank, "alpha": config.alpha, LORA_SCALING_KEY: scales.pop(),
        "dropout": config.dropout, "train_bn": config.train_bn, "target_convs": len(targets), **counts,
    })
    return model


def _is_norm(encoder: nn.Module, param_name: str) -> bool:
    owner = encoder.get_submodule(param_name.rpartition(".")[0])
    return isinstance(owner, nn.modules.batchnorm._BatchNorm)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters of ``model``: all, trainable, and of the trainable ones those of LoRA factors."""
    params = list(model.named_parameters())
    return {
        "parameters": sum(p.numel() for _, p in params),
        "trainable_parameters": sum(p.numel() for _, p in params if p.requires_grad),
        "lora_parameters": sum(p.numel() for n, p in params if p.requires_grad and ".lora_" in n),
    }


def delta_record(model: nn.Module) -> dict[str, Any] | None:
    """What :func:`apply_encoder_delta` did to ``model`` (None: nothing): kind, rank, alpha, scaling,
    number of wrapped convolutions, parameter counts."""
    return getattr(model, RECORD_ATTR, None)


def describe_delta(model: nn.Module) -> str:
    """One line for the start of a run: the delta and the trainable-parameter count."""
    record = delta_record(model)
    if record is None:
        counts = parameter_counts(model)
        return f"trainable parameters {counts['trainable_parameters']:,} of {counts['parameters']:,}"
    rest = record["trainable_parameters"] - record["lora_parameters"]
    return (f"encoder delta: LoRA r={record['rank']} alpha={record['alpha']:g} on {record['target_convs']} 1x1 "
            f"convolutions, encoder frozen{' (batch norms trained)' if record['train_bn'] else ''}; "
            f"trainable parameters {record['trainable_parameters']:,} of {record['parameters']:,} "
            f"(LoRA {record['lora_parameters']:,}, decoder and head{' and batch norms' if record['train_bn'] else ''} "
            f"{rest:,})")


def merge_encoder_delta(model: CrackSAM | SegModel) -> CrackSAM | SegModel:
    """The plain network of ``model``'s architecture with the LoRA folded into its convolutions (a
    new model on the CPU; ``model`` is unchanged), or ``model`` itself when it carries no delta."""
    record = delta_record(model)
    if record is None:
        return model
    assert isinstance(model, SegModel)  # apply_encoder_delta accepts nothing else
    plain = build_segmodel(dataclasses.replace(model.config), load_pretrained=False)
    weights = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    plain.load_state_dict(fold_lora(weights, record[LORA_SCALING_KEY]), strict=True)
    return plain.train(model.training)


def checkpoint_record(model: nn.Module) -> dict[str, Any]:
    """Added to a training checkpoint's model record: the scaling that folds its LoRA factors."""
    record = delta_record(model)
    return {} if record is None else {LORA_SCALING_KEY: record[LORA_SCALING_KEY]}


def saved_record(model: nn.Module) -> dict[str, Any]:
    """Added to ``best/config.json``: how the folded model was trained (kind, rank, parameter counts)."""
    record = delta_record(model)
    return {} if record is None else {"encoder_delta": dict(record)}
