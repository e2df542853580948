"""CrackSAM model, deltas and parameter counts."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from cracksam.cli.main import main
from cracksam.errors import ConfigError
from cracksam.models import (
    AdapterConfig,
    CrackSAMConfig,
    DeltaConfig,
    LoRAConfig,
    build_cracksam,
    count_parameters,
    create,
    list_models,
)
from cracksam.models.deltas import LoRALinear
from cracksam.models.deltas.adapter import AttentionWithAdapter, MLPWithAdapter

# -- parameter counts (paper, input 448, 2 mask tokens) -----------------------------------------


def _counts(backbone: str, delta: DeltaConfig):
    return count_parameters(build_cracksam(CrackSAMConfig(backbone=backbone, delta=delta), device="meta"))


def test_vit_h_adapter_counts_match_paper():
    c = _counts("vit_h", DeltaConfig(kind="adapter", adapter=AdapterConfig(bottleneck=32, scale=0.2)))
    assert round(c.total / 1e6, 1) == 641.9
    assert round(c.trainable / 1e6, 1) == 9.1


def test_vit_h_lora_counts_match_paper():
    c = _counts("vit_h", DeltaConfig(kind="lora", lora=LoRAConfig(rank=4, targets=["q", "v"])))
    assert round(c.total / 1e6, 1) == 637.2
    assert round(c.trainable / 1e6, 1) == 4.4
    r1 = _counts("vit_h", DeltaConfig(kind="lora", lora=LoRAConfig(rank=1)))
    assert round(r1.delta / 1e6, 2) == 0.16
    # r=1 on q and v: 2 targets x (A: r x d + B: d x r) x 32 blocks.
    assert r1.delta == 2 * 2 * 1280 * 32


def test_counts_are_consistent_across_backbones():
    none_b = _counts("vit_b", DeltaConfig(kind="none"))
    none_l = _counts("vit_l", DeltaConfig(kind="none"))
    none_h = _counts("vit_h", DeltaConfig(kind="none"))
    # SAM's encoders: ~89 M / ~308 M / ~632 M at 1024; smaller pos-embeddings at 448.
    assert 85e6 < none_b.total < 95e6
    assert 300e6 < none_l.total < 315e6
    assert none_b.total < none_l.total < none_h.total
    # The decoder and prompt encoder do not depend on the backbone.
    assert none_b.trainable == none_l.trainable == none_h.trainable
    assert none_b.delta == 0
    lora_b = _counts("vit_b", DeltaConfig(kind="lora"))
    assert lora_b.delta == 2 * 2 * 4 * 768 * 12
    adapter_b = _counts("vit_b", DeltaConfig(kind="adapter"))
    assert adapter_b.delta == 12 * 2 * (768 * 32 + 32 + 32 * 768 + 768)
    both = _counts("vit_b", DeltaConfig(kind="adapter+lora"))
    assert both.delta == lora_b.delta + adapter_b.delta


def test_info_cli_json_and_table(capsys):
    assert main(["info", "--backbone", "vit_h", "--delta", "lora", "--rank", "4", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["total_parameters"] == _counts("vit_h", DeltaConfig(kind="lora")).total
    assert round(payload["trainable_parameters"] / 1e6, 1) == 4.4
    assert 0 < payload["delta_share_of_total"] < 0.01
    assert main(["info", "--backbone", "vit_h", "--delta", "adapter"]) == 0
    out = capsys.readouterr().out
    assert "641.9" in out and "9.1" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["info", "--backbone", "vit_x"], "unknown backbone"),
        (["info", "--image-size", "450"], "multiple of 16"),
        (["info", "--delta", "lora", "--targets", "q,z"], "LoRA targets"),
        (["info", "--delta", "prefix"], "--delta must be one of"),
        (["info", "--rank", "0", "--delta", "lora"], "rank must be"),
    ],
)
def test_info_cli_rejects_bad_options(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_registry_names_build_and_reject_unknown():
    names = list_models("cracksam_")
    assert "cracksam_vit_h_adapter_lora" in names and "cracksam_tiny_none" in names
    model = create("cracksam_tiny_lora", image_size=64)
    assert model.config.delta.kind == "lora" and model.config.image_size == 64
    with pytest.raises(ConfigError, match="unknown model"):
        create("cracksam_vit_q_lora")


# -- forward and deltas -------------------------------------------------------------------------


def _same_base(src, dst):
    """Copy every base weight of ``src`` into ``dst`` (deltas stay as they are)."""
    missing = dst.load_state_dict(src.state_dict(), strict=False)
    assert not [k for k in missing.missing_keys if ".adapter." not in k and ".lora_" not in k]


def test_forward_shapes(tiny_config, images64):
    model = build_cracksam(tiny_config("adapter+lora")).eval()
    with torch.no_grad():
        low = model.forward_low_res(images64)
        full = model(images64)
    assert low.shape == (2, 2, 16, 16)  # logits at 1/4 of the input
    assert full.shape == (2, 2, 64, 64)
    expected = F.interpolate(low, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(full, expected)
    # Images are independent: batch results equal single-image results.
    with torch.no_grad():
        single = model(images64[1:2])
    torch.testing.assert_close(single, full[1:2], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="expected images of shape"):
        model(images64[:, :, :32])


@pytest.mark.parametrize("kind", ["lora", "adapter", "adapter+lora"])
def test_untrained_delta_leaves_output_unchanged(tiny_config, images64, kind):
    torch.manual_seed(0)
    base = build_cracksam(tiny_config("none")).eval()
    with_delta = build_cracksam(tiny_config(kind)).eval()
    _same_base(base, with_delta)
    with torch.no_grad():
        torch.testing.assert_close(with_delta(images64), base(images64), atol=1e-6, rtol=1e-6)
        # And once the delta has learned something, the output does change.
        for name, p in with_delta.named_parameters():
            if ".lora_B." in name or ".adapter.up." in name:
                p.normal_(0, 0.5)
        assert (with_delta(images64) - base(images64)).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["none", "lora", "adapter", "adapter+lora"])
def test_only_delta_parameters_train_in_the_encoder(tiny_config, kind):
    model = build_cracksam(tiny_config(kind))
    trainable_encoder = [n for n, p in model.image_encoder.named_parameters() if p.requires_grad]
    assert all(".adapter." in n or ".lora_" in n for n in trainable_encoder)
    if kind == "none":
        assert trainable_encoder == []
    if "lora" in kind:
        assert any(".lora_A." in n for n in trainable_encoder)
    if "adapter" in kind:
        assert any(".adapter." in n for n in trainable_encoder)
    assert all(p.requires_grad for p in model.mask_decoder.parameters())
    assert all(p.requires_grad for p in model.prompt_encoder.parameters())
    # Base keys stay those of the official checkpoints.
    for key in model.state_dict():
        assert ".base_layer." not in key and ".attn.attn." not in key


def test_gradients_reach_only_trainable_parameters(tiny_config, images64):
    model = build_cracksam(tiny_config("adapter+lora"))
    model(images64)[:, 1].mean().backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
        # Unused without prompts (point embeddings, mask downscaling, IoU head) get no gradient
        # but are counted as trainable, as in the paper; everything on the path must get one.
        elif ".adapter." in name or ".lora_" in name or "output_upscaling" in name or "no_mask_embed" in name:
            assert p.grad is not None, name
            # B and up start at zero, so A and down get zero gradients at the first step only.
            if ".lora_B." in name or ".adapter.up." in name or "output_upscaling" in name:
                assert p.grad.abs().sum() > 0, name


def test_lora_targets_touch_only_their_slices(tiny_config):
    config = tiny_config("lora")
    config.delta.lora = LoRAConfig(rank=2, targets=["k", "o"])
    model = build_cracksam(config)
    attn = model.image_encoder.blocks[0].attn
    assert isinstance(attn.qkv, LoRALinear) and isinstance(attn.proj, LoRALinear)
    assert set(attn.qkv.lora_A) == {"k"} and set(attn.proj.lora_A) == {"o"}
    for p in attn.qkv.lora_B.values():
        torch.nn.init.normal_(p)
    delta = attn.qkv.delta_weight()
    d = attn.qkv.in_features
    assert delta[:d].abs().sum() == 0 and delta[2 * d :].abs().sum() == 0
    assert delta[d : 2 * d].abs().sum() > 0
    # LoRA A is random, B zero.
    assert attn.qkv.lora_A["k"].abs().sum() > 0 and attn.proj.lora_B["o"].abs().sum() == 0


def test_lora_scaling_against_hand_computed_weights(tiny_config):
    """``W + s·B A`` written out per slice, with s = 0.25.  Mutants killed: ``scaling`` dropped
    from ``LoRALinear.forward`` or from ``delta_weight`` (every other test uses s = 1), and a
    slot's update added to the wrong rows."""
    config = tiny_config("lora")
    config.delta.lora = LoRAConfig(rank=3, targets=["q", "v", "o"], scaling=0.25)
    attn = build_cracksam(config).image_encoder.blocks[0].attn
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for linear in (attn.qkv, attn.proj):
            for p in linear.lora_B.values():
                p.copy_(torch.randn(p.shape, generator=g))
    d = attn.qkv.in_features
    qkv = attn.qkv.weight.detach().clone()
    qkv[:d] += 0.25 * attn.qkv.lora_B["q"] @ attn.qkv.lora_A["q"]  # q: rows 0..d
    qkv[2 * d :] += 0.25 * attn.qkv.lora_B["v"] @ attn.qkv.lora_A["v"]  # v: rows 2d..3d, k untouched
    proj = attn.proj.weight + 0.25 * attn.proj.lora_B["o"] @ attn.proj.lora_A["o"]
    x = torch.randn(2, 5, d, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(attn.qkv(x), x @ qkv.t() + attn.qkv.bias, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(attn.proj(x), x @ proj.t() + attn.proj.bias, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(attn.qkv.weight + attn.qkv.delta_weight(), qkv, atol=1e-6, rtol=1e-6)
        # Merged, the plain linears compute the same.
        from cracksam.models.deltas.lora import merge_lora

        assert merge_lora(attn) == 2
        torch.testing.assert_close(attn.qkv.weight, qkv, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(attn.proj(x), x @ proj.t() + attn.proj.bias, atol=1e-5, rtol=1e-5)


def test_lora_factors_follow_the_base_weight_and_linear_init(tiny_config):
    """A is initialised like an ``nn.Linear`` weight, U(-1/sqrt(in), 1/sqrt(in)) (kaiming uniform
    with a = sqrt(5)), B is zero, and both take the base weight's dtype.  Mutants killed: another
    ``a`` (or none) in the kaiming init; A or B created without the base's device/dtype."""
    import math

    from cracksam.models.deltas.lora import inject_lora

    encoder = build_cracksam(tiny_config("adapter")).image_encoder.double()
    torch.manual_seed(0)
    inject_lora(encoder, LoRAConfig(rank=8, targets=["q", "k", "v", "o"]))
    attn = encoder.blocks[0].attn
    params = [*attn.qkv.lora_A.values(), *attn.qkv.lora_B.values(), *attn.proj.lora_A.values()]
    assert all(p.dtype == torch.float64 for p in params)
    bound = 1 / math.sqrt(attn.qkv.in_features)
    a = torch.cat([b.attn.qkv.lora_A[s].flatten() for b in encoder.blocks for s in "qkv"])
    assert a.numel() > 1000 and 0.97 * bound < a.abs().max() <= bound  # a = sqrt(6) would give 0.93
    assert all(p.abs().sum() == 0 for p in attn.qkv.lora_B.values())


def test_lora_cannot_be_added_twice(tiny_config):
    """Mutants killed: the guard's ``or`` as ``and`` (an encoder with LoRA on ``o`` only let
    through) and its message changed."""
    from cracksam.models.deltas.lora import inject_lora

    encoder = build_cracksam(tiny_config("adapter")).image_encoder
    inject_lora(encoder, LoRAConfig(rank=2, targets=["o"]))
    with pytest.raises(ConfigError, match=r"^the encoder already has LoRA$"):
        inject_lora(encoder, LoRAConfig(rank=2, targets=["q"]))


def test_lora_config_errors_say_what_is_wrong():
    """Mutants killed: the rank and repeated-target errors raised without their messages."""
    with pytest.raises(ConfigError, match=r"^LoRA rank must be >= 1, got 0$"):
        LoRAConfig(rank=0)
    with pytest.raises(ConfigError, match=r"^LoRA targets repeat: \['q', 'v', 'q'\]$"):
        LoRAConfig(targets=["q", "v", "q"])


def test_has_lora_tells_lora_models_apart(tiny_config):
    """Mutant killed: ``has_lora`` not looking at the modules (it decides whether a checkpoint
    needs merging; no other test of ``scripts/mutation.sh lora`` calls it)."""
    from cracksam.models.deltas.lora import has_lora, merge_lora

    model = build_cracksam(tiny_config("lora"))
    assert has_lora(model) and not has_lora(build_cracksam(tiny_config("adapter")))
    with torch.no_grad():
        assert merge_lora(model) > 0
    assert not has_lora(model)  # merged: plain linears again


def test_lora_merge_equals_unmerged(tiny_config, images64):
    model = build_cracksam(tiny_config("adapter+lora")).eval()
    for name, p in model.named_parameters():
        if ".lora_B." in name or ".adapter.up." in name:
            torch.nn.init.normal_(p, std=0.2)
    keys_before = {k for k in model.state_dict() if ".lora_" not in k}
    with torch.no_grad():
        before = model(images64)
        model.merge()
        after = model(images64)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert set(model.state_dict()) == keys_before


def test_adapter_wiring_matches_paper_equations(tiny_config):
    """Eq. 3-4: a = Attn(LN1 x); x' = x + a + Ad_seq(a); out = x' + MLP(LN2 x') + s·Ad_mlp(LN2 x')."""
    config = tiny_config("adapter")
    config.delta.adapter = AdapterConfig(bottleneck=8, scale=0.3)
    model = build_cracksam(config)
    block = model.image_encoder.blocks[1]  # a global-attention block: no window partition
    assert isinstance(block.attn, AttentionWithAdapter) and isinstance(block.mlp, MLPWithAdapter)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 4, 4, 32)
    with torch.no_grad():
        # The plain SAM attention on the same weights is the reference for Attn.
        plain_attn = super(AttentionWithAdapter, block.attn).forward(block.norm1(x))
        seq = plain_attn + block.attn.adapter.up(F.gelu(block.attn.adapter.down(plain_attn)))
        x1 = x + seq
        h = block.norm2(x1)
        mlp = block.mlp.lin2(block.mlp.act(block.mlp.lin1(h)))
        par = block.mlp.adapter.up(F.gelu(block.mlp.adapter.down(h)))
        expected = x1 + mlp + 0.3 * par
        torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def test_pixel_norm_option(tiny_config):
    sam = build_cracksam(tiny_config("none"))
    unit = build_cracksam(tiny_config("none", pixel_norm="unit"))
    x = torch.full((1, 3, 64, 64), 255.0)
    assert torch.allclose(unit.preprocess(x), torch.ones_like(x))
    assert torch.allclose(sam.preprocess(x)[0, 0], torch.full((64, 64), (255 - 123.675) / 58.395))
    # Normalisation constants are not weights: they must not end up in checkpoints.
    assert "pixel_mean" not in sam.state_dict()
