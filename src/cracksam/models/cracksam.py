"""CrackSAM: SAM with a frozen image encoder, a parameter-efficient delta, and a two-token
mask decoder predicting background and crack logits without prompts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cracksam.errors import ConfigError
from cracksam.models import registry
from cracksam.models.backbones import (
    BACKBONES,
    PATCH_SIZE,
    SAM_PIXEL_MEAN,
    SAM_PIXEL_STD,
    build_image_encoder,
    build_mask_decoder,
    build_prompt_encoder,
    check_image_size,
    get_backbone,
)
from cracksam.models.deltas import DELTA_KINDS, DeltaConfig, apply_delta, merge_lora

PixelNorm = Literal["sam", "unit"]


@dataclass
class CrackSAMConfig:
    """Everything needed to rebuild a CrackSAM network (not its weights).

    ``pixel_norm``: ``sam`` standardises RGB with SAM's ImageNet mean/std (what the official
    checkpoints were trained with; the default).  ``unit`` only divides by 255, which is what the
    official CrackSAM code effectively did when it switched SAM's normalisation off; use it to
    reproduce that code's numbers.
    """

    backbone: str = "vit_b"
    image_size: int = 448
    delta: DeltaConfig = field(default_factory=DeltaConfig)
    pixel_norm: PixelNorm = "sam"
    class_names: list[str] = field(default_factory=lambda: ["background", "crack"])

    def __post_init__(self) -> None:
        get_backbone(self.backbone)
        check_image_size(self.image_size)
        if len(self.class_names) != 2:
            raise ConfigError(f"CrackSAM predicts 2 classes (background, crack); got {self.class_names}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class CrackSAM(nn.Module):
    """Prompt-free SAM for binary crack segmentation.

    Input: RGB images, float, values in 0..255, (B, 3, S, S) with S = ``config.image_size``.
    Output: logits (B, 2, S, S): channel 0 background, channel 1 crack.  The decoder predicts
    them at S/4 and they are upsampled bilinearly inside the model, so exported graphs give
    full-size logits too.
    """

    # Registered as buffers in __init__; declared here for the type checker.
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    # Set on loading (models.io): the input size the weights were trained at; absent on a new model.
    trained_image_size: int

    def __init__(self, config: CrackSAMConfig) -> None:
        super().__init__()
        self.config = config
        spec = get_backbone(config.backbone)
        self.image_encoder = build_image_encoder(spec, config.image_size)
        self.prompt_encoder = build_prompt_encoder(spec, config.image_size)
        self.mask_decoder = build_mask_decoder(spec, num_mask_tokens=config.num_classes)
        mean, std = (SAM_PIXEL_MEAN, SAM_PIXEL_STD) if config.pixel_norm == "sam" else ((0.0,) * 3, (255.0,) * 3)
        # Non-persistent: they follow the config, not the checkpoint.
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        apply_delta(self.image_encoder, config.delta)
        self.freeze_base()

    # -- parameters -------------------------------------------------------------------------

    def freeze_base(self) -> None:
        """Freeze the encoder except its delta (all of it trains with ``full``); prompt encoder and
        mask decoder stay trainable."""
        full = self.config.delta.kind == "full"
        for name, p in self.image_encoder.named_parameters():
            p.requires_grad = full or ".adapter." in name or ".lora_" in name
        for p in self.prompt_encoder.parameters():
            p.requires_grad = True
        for p in self.mask_decoder.parameters():
            p.requires_grad = True

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The part of the model that training changes, keyed by parameter name."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def merge(self) -> CrackSAM:
        """Fold LoRA into the frozen weights (in place) for inference and export."""
        merge_lora(self)
        return self

    # -- forward ----------------------------------------------------------------------------

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.pixel_mean) / self.pixel_std

    def forward_low_res(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in 0..255 -> logits (B, 2, S/4, S/4)."""
        size = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (size, size):
            raise ValueError(f"expected images of shape (B, 3, {size}, {size}), got {tuple(images.shape)}")
        embeddings = self.image_encoder(self.preprocess(images))
        # No prompts: the prompt encoder still gives the learned "no mask" dense embedding
        # and an empty sparse set, which is how SAM is run for fully automatic output.
        # Their batch dimension is 1 and broadcasts against the B image embeddings inside the
        # two-way transformer (as in SAMed / the official CrackSAM code): expanding them to B
        # would make predict_masks repeat every image B times.
        sparse, dense = self.prompt_encoder(points=None, boxes=None, masks=None)
        # predict_masks returns every mask token; with 2 tokens they are (background, crack).
        masks, _iou = self.mask_decoder.predict_masks(
            image_embeddings=embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        return masks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in 0..255 -> logits (B, 2, S, S)."""
        low = self.forward_low_res(images)
        return F.interpolate(low, size=images.shape[-2:], mode="bilinear", align_corners=False)

    @property
    def token_grid(self) -> int:
        return self.config.image_size // PATCH_SIZE


def build_cracksam(config: CrackSAMConfig, device: str | torch.device | None = None) -> CrackSAM:
    """Build CrackSAM with random base weights (use :func:`cracksam.models.load_sam_checkpoint`
    to load official weights).  ``device="meta"`` builds without allocating memory, which is how
    parameter counts of ViT-H are computed."""
    if device is None:
        return CrackSAM(config)
    with torch.device(device):
        return CrackSAM(config)


@dataclass(frozen=True)
class ParameterCount:
    total: int
    trainable: int
    delta: int  # trainable parameters inside the image encoder (adapter/LoRA)

    @property
    def head(self) -> int:
        return self.trainable - self.delta


def count_parameters(model: nn.Module) -> ParameterCount:
    total = trainable = delta = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
            if name.startswith("image_encoder."):
                delta += p.numel()
    return ParameterCount(total, trainable, delta)


# -- registered variants: cracksam_<backbone>_<delta> ---------------------------------------------


def _variant_factory(backbone: str, kind: str) -> Callable[..., CrackSAM]:
    def factory(device: Any = None, **overrides: Any) -> CrackSAM:
        config = CrackSAMConfig(backbone=backbone, delta=DeltaConfig(kind=kind))  # type: ignore[arg-type]
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise ConfigError(f"CrackSAM has no option {key!r}")
            setattr(config, key, copy.deepcopy(value))
        config.__post_init__()
        return build_cracksam(config, device=device)

    return factory


for _backbone in BACKBONES:
    for _kind in DELTA_KINDS:
        registry.register_model(registry.ModelEntry(
            name=f"cracksam_{_backbone}_{_kind.replace('+', '_')}", build=_variant_factory(_backbone, _kind),
            family="cracksam", role="cracksam", backbone=_backbone, delta=_kind,
            description=f"CrackSAM, SAM {_backbone} image encoder, delta {_kind}",
            default_image_size=CrackSAMConfig.image_size,
            default_inference_mode="resize",  # what CrackSAM is trained and evaluated with
            input_multiple=PATCH_SIZE,
        ))
