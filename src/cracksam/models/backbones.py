"""SAM backbone settings and builders of SAM's three modules at any input size.

The modules themselves come from the official ``segment_anything`` package; only the sizes
change: CrackSAM runs at 448×448 (28×28 tokens) instead of SAM's 1024×1024 (64×64 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

from cracksam.errors import ConfigError

PATCH_SIZE = 16
SAM_IMAGE_SIZE = 1024  # the size official checkpoints were trained at
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class BackboneSpec:
    """Sizes of a SAM variant: the ViT image encoder and the two-way-transformer decoder."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    prompt_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_hidden_dim: int = 256
    # Official checkpoint file for ``--base vit_h`` style names (None for test configs).
    checkpoint_url: str | None = None
    checkpoint_md5: str | None = None  # full MD5 of the official file (its name carries a prefix)


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"

BACKBONES: dict[str, BackboneSpec] = {
    "vit_b": BackboneSpec("vit_b", 768, 12, 12, (2, 5, 8, 11), checkpoint_url=_SAM_URL + "sam_vit_b_01ec64.pth",
                          checkpoint_md5="01ec64d29a2fca3f0661936605ae66f8"),
    "vit_l": BackboneSpec("vit_l", 1024, 24, 16, (5, 11, 17, 23), checkpoint_url=_SAM_URL + "sam_vit_l_0b3195.pth",
                          checkpoint_md5="0b3195507c641ddb6910d2bb5adee89c"),
    "vit_h": BackboneSpec("vit_h", 1280, 32, 16, (7, 15, 23, 31), checkpoint_url=_SAM_URL + "sam_vit_h_4b8939.pth",
                          checkpoint_md5="4b8939a88964f0f4ff5f5b2642c598a6"),
    # A few-thousand-parameter SAM for tests and CPU smoke runs: same module types, tiny sizes.
    "tiny": BackboneSpec(
        "tiny", 32, 2, 2, (1,), window_size=4, prompt_dim=32, decoder_mlp_dim=64, decoder_heads=2,
        iou_head_hidden_dim=32,
    ),
}


def get_backbone(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r} (choose from {', '.join(BACKBONES)})") from None


def check_image_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
        raise ConfigError(f"image size must be a positive integer, got {image_size!r}")
    if image_size % PATCH_SIZE:
        raise ConfigError(f"image size must be a multiple of {PATCH_SIZE}, got {image_size}")
    return image_size


def build_image_encoder(spec: BackboneSpec, image_size: int) -> ImageEncoderViT:
    """SAM's ViT at ``image_size``; its position tables are sized for ``image_size // 16`` tokens."""
    return ImageEncoderViT(
        depth=spec.depth,
        embed_dim=spec.embed_dim,
        img_size=image_size,
        mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=spec.num_heads,
        patch_size=PATCH_SIZE,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=spec.global_attn_indexes,
        window_size=spec.window_size,
        out_chans=spec.prompt_dim,
    )


def build_prompt_encoder(spec: BackboneSpec, image_size: int) -> PromptEncoder:
    tokens = image_size // PATCH_SIZE
    return PromptEncoder(
        embed_dim=spec.prompt_dim,
        image_embedding_size=(tokens, tokens),
        input_image_size=(image_size, image_size),
        mask_in_chans=16,
    )


def build_mask_decoder(spec: BackboneSpec, num_mask_tokens: int) -> MaskDecoder:
    """SAM's decoder with ``num_mask_tokens`` output tokens (CrackSAM: 2, background and crack)."""
    return MaskDecoder(
        num_multimask_outputs=num_mask_tokens - 1,
        transformer=TwoWayTransformer(
            depth=2,
            embedding_dim=spec.prompt_dim,
            mlp_dim=spec.decoder_mlp_dim,
            num_heads=spec.decoder_heads,
        ),
        transformer_dim=spec.prompt_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=spec.iou_head_hidden_dim,
    )
