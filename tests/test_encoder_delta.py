"""``encoder_delta``: a frozen pretrained encoder with LoRA on its 1×1 convolutions
and a trained decoder, on the EfficientNet-Lite0 U-Net (random init, 64 px: the structure is what
counts here); the saved best/ model is the plain architecture with the LoRA folded in."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import yaml
from peft.tuners.lora import LoraLayer
from torch import nn

from cracksam.data.synthetic import make_dataset
from cracksam.errors import CheckpointError, ConfigError
from cracksam.models import create_model
from cracksam.models.io import load_model
from cracksam.models.lora_fold import fold_lora
from cracksam.models.run_checkpoint import MODEL_KEY, load_checkpoint_file
from cracksam.models.segmodels import _ARCHS, ArchSpec, SegModelConfig, register_architecture
from cracksam.training.config import DataConfig, TrainConfig
from cracksam.training.encoder_delta import (
    EncoderDeltaConfig,
    apply_encoder_delta,
    delta_record,
    merge_encoder_delta,
    parameter_counts,
    pointwise_convs,
)
from cracksam.training.qat import QATConfig
from cracksam.training.trainer import fit
from tests._config_cli import refused, resolved
from tests._runs import assert_same_weights, last_weights

from .test_reproducible_training import _CtrlCAt

ARCH, SIZE = "unet_efficientnet_lite0", 64
LORA = EncoderDeltaConfig(kind="lora")


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return create_model(ARCH, image_size=SIZE)


def _images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 255


def _convs(encoder: nn.Module) -> tuple[set[str], set[str]]:
    """(1×1 convolutions, every other convolution) of ``encoder``, by name, counted here on their own."""
    one, other = set(), set()
    for name, m in encoder.named_modules():
        if isinstance(m, nn.Conv2d):
            (one if m.kernel_size == (1, 1) and m.groups == 1 else other).add(name)
    return one, other


def _perturb_lora(model: nn.Module, seed: int = 1) -> None:
    """Non-zero B factors, so the delta changes the output (at init B = 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


# -- inject -----------------------------------------------------------------------------------------


def test_lora_wraps_every_1x1_conv_of_the_encoder_and_freezes_the_rest_of_it():
    model = _model()
    x = _images()
    with torch.no_grad():
        before = model.eval()(x)
    pointwise, others = _convs(model.net.encoder)
    assert len(pointwise) == 31 and len(others) == 17  # Lite0: expand/project convs; stem + 16 depthwise
    apply_encoder_delta(model, LORA)
    encoder = model.net.encoder
    wrapped = {name for name, m in encoder.named_modules() if isinstance(m, LoraLayer)}
    assert wrapped == pointwise
    for name in others:  # the stem and the depthwise convolutions are left as they were
        assert type(encoder.get_submodule(name)) is nn.Conv2d and not isinstance(encoder.get_submodule(name), LoraLayer)
    for name, p in model.named_parameters():
        in_encoder = name.startswith("net.encoder.")
        assert p.requires_grad == (not in_encoder or ".lora_" in name), name
    assert any(p.requires_grad for n, p in model.named_parameters() if n.startswith("net.decoder."))
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("net.segmentation_head."))
    # B starts at zero: the injected network computes exactly what the plain one did.
    with torch.no_grad():
        assert torch.equal(model.eval()(x), before)
    record = delta_record(model)
    assert record is not None and record["target_convs"] == 31 and record["lora_scaling"] == 2.0
    counts = parameter_counts(model)
    # rank 8: r·(in + out) per 1×1 conv; decoder and head whole.
    lora = sum(8 * (m.in_channels + m.out_channels) for m in (encoder.get_submodule(n).base_layer for n in pointwise))
    decoder = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("net.encoder."))
    assert counts["lora_parameters"] == lora and counts["trainable_parameters"] == lora + decoder


def test_frozen_batch_norms_keep_their_statistics_while_the_network_trains():
    model = apply_encoder_delta(_model(), LORA).train()
    norms = {n: m for n, m in model.net.encoder.named_modules() if isinstance(m, nn.BatchNorm2d)}
    stats = {n: m.running_mean.clone() for n, m in norms.items()}
    model(_images())
    assert all(torch.equal(norms[n].running_mean, stats[n]) for n in norms)
    assert not any(m.weight.requires_grad for m in norms.values())
    # train_bn: their affine weights train and their statistics move.
    trained = apply_encoder_delta(_model(), EncoderDeltaConfig(kind="lora", train_bn=True)).train()
    trained(_images())
    tnorms = dict(trained.net.encoder.named_modules())
    assert all(tnorms[n].weight.requires_grad for n in norms)
    assert not all(torch.equal(tnorms[n].running_mean, stats[n]) for n in norms)


def test_targets_pick_convolutions_by_the_end_of_their_name():
    for target, count in (("conv_pwl", 15), ("conv_pw", 16)):  # project convs; expand convs (+ block 0's)
        model = apply_encoder_delta(_model(), EncoderDeltaConfig(kind="lora", targets=[target]))
        wrapped = [n for n, m in model.net.encoder.named_modules() if isinstance(m, LoraLayer)]
        assert len(wrapped) == count and all(n.endswith("." + target) for n in wrapped)
        assert delta_record(model)["target_convs"] == count
    one = apply_encoder_delta(_model(), EncoderDeltaConfig(kind="lora", targets=["model.blocks.6.0.conv_pwl"]))
    assert [n for n, m in one.net.encoder.named_modules() if isinstance(m, LoraLayer)] == ["model.blocks.6.0.conv_pwl"]
    none = _model()
    assert apply_encoder_delta(none, EncoderDeltaConfig()) is none  # kind none: nothing changes
    assert delta_record(none) is None and all(p.requires_grad for p in none.parameters())


def test_grouped_1x1_convolutions_are_not_targets():
    encoder = nn.Sequential(nn.Conv2d(4, 4, 1, groups=2), nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 3, padding=1),
                            nn.Conv2d(8, 8, 1, groups=8))
    assert pointwise_convs(encoder) == ["1"]


def test_optimiser_steps_move_the_lora_and_the_decoder_never_the_encoder():
    from cracksam.training.losses import CrackLoss
    from cracksam.training.module import SegmentationModule

    model = apply_encoder_delta(_model(), LORA)
    frozen = {k: v.clone() for k, v in model.net.encoder.state_dict().items() if ".lora_" not in k}
    lora = {k: v.clone() for k, v in model.state_dict().items() if ".lora_" in k}
    decoder = {k: v.clone() for k, v in model.net.decoder.state_dict().items()}
    config = TrainConfig(network=SegModelConfig(arch=ARCH, image_size=SIZE), encoder_delta=LORA)
    config.optim.lr, config.optim.warmup_iters = 1e-2, 0
    optimizer = SegmentationModule(model, config, max_iters=10).configure_optimizers()["optimizer"]
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in model.parameters() if p.requires_grad}
    loss_fn, x = CrackLoss(0.2, "crack"), _images(2, seed=3)
    target = (x.mean(dim=1) < 100).long()
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        loss_fn(model(x), target)[0].backward()
        optimizer.step()
    after = model.net.encoder.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())  # weights and BN statistics
    moved = model.state_dict()
    assert all(not torch.equal(moved[k], v) for k, v in lora.items())  # every A and every B
    assert any(not torch.equal(model.net.decoder.state_dict()[k], v) for k, v in decoder.items())


# -- merge --------------------------------------------------------------------------------------------


def test_merged_model_is_the_plain_architecture_and_computes_the_same():
    model = apply_encoder_delta(_model(), LORA)
    _perturb_lora(model)
    x = _images()
    with torch.no_grad():
        injected = model.eval()(x)
        plain = merge_encoder_delta(model).eval()
        assert not torch.allclose(injected, _model().eval()(x), atol=1e-2)  # the delta does something
        torch.testing.assert_close(plain(x), injected, atol=1e-4, rtol=1e-4)
    assert set(plain.state_dict()) == set(_model().state_dict())
    assert not any(isinstance(m, LoraLayer) for m in plain.modules()) and delta_record(plain) is None
    assert any(isinstance(m, LoraLayer) for m in model.modules())  # the training model is left as it was
    # The fold is peft's own merge: W0 + scaling · B A, conv by conv.
    for name, m in model.named_modules():
        if isinstance(m, LoraLayer):
            want = m.base_layer.weight + m.get_delta_weight("default")
            torch.testing.assert_close(plain.get_submodule(name).weight, want.detach())
    untouched = _model()
    assert merge_encoder_delta(untouched) is untouched


def test_fold_refuses_what_it_cannot_fold_in_one_line():
    w = {"c.base_layer.weight": torch.zeros(4, 3, 1, 1), "c.lora_A.default.weight": torch.zeros(2, 3, 1, 1),
         "c.lora_B.default.weight": torch.zeros(4, 2, 1, 1)}
    assert set(fold_lora(w, 2.0)) == {"c.weight"}
    cases = [
        (w, None, "lora_scaling"),
        (w, float("nan"), "lora_scaling"),
        ({**w, "c.base_layer.weight": torch.zeros(4, 3, 3, 3), "c.lora_A.default.weight": torch.zeros(2, 3, 3, 3)},
         2.0, "1x1 convolutions only"),
        ({k: v for k, v in w.items() if "lora_B" not in k}, 2.0, "without its B factor"),
        ({k: v for k, v in w.items() if "lora_A" not in k}, 2.0, "without its A factor"),
        ({**w, "c.lora_magnitude_vector.default.weight": torch.zeros(4)}, 2.0, "does not know"),
    ]
    for weights, scaling, message in cases:
        with pytest.raises(CheckpointError, match=message) as info:
            fold_lora(weights, scaling)
        assert "\n" not in str(info.value)


# -- a training run -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("delta") / "syn", n=8, size=(80, 80))


def _config(root, out, max_iters: int = 4) -> TrainConfig:
    cfg = TrainConfig(network=SegModelConfig(arch=ARCH, image_size=SIZE), encoder_delta=EncoderDeltaConfig(kind="lora"),
                      data=DataConfig(train=[str(root)], num_workers=0, crop=SIZE, augment=False),
                      batch_size=2, max_iters=max_iters, checkpoint_every=2, val_every_n_steps=2, out_dir=str(out),
                      progress=False)
    cfg.optim.lr, cfg.optim.warmup_iters = 5e-3, 0
    return cfg


@pytest.fixture(scope="module")
def lora_run(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "run"
    return fit(_config(root, out))


def test_a_lora_run_saves_a_plain_best_model_that_loads_and_predicts_without_peft(lora_run, monkeypatch, capfd):
    best = lora_run.best_dir
    assert best is not None
    meta = json.loads((best / "config.json").read_text())
    record = meta["encoder_delta"]
    assert (record["kind"], record["rank"], record["target_convs"]) == ("lora", 8, 31)
    assert record["trainable_parameters"] < record["parameters"] / 2
    saved = yaml.safe_load((lora_run.out_dir / "config.yaml").read_text())
    assert saved["encoder_delta"]["kind"] == "lora"
    # last.ckpt holds the LoRA factors and the scaling that folds them.
    ckpt = load_checkpoint_file(lora_run.out_dir / "checkpoints" / "last.ckpt")
    assert any(".lora_A.default" in k for k in ckpt["state_dict"]) and ckpt[MODEL_KEY]["lora_scaling"] == 2.0
    injected = apply_encoder_delta(_model(), LORA)
    injected.load_state_dict({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}, strict=True)
    x = _images()
    with torch.no_grad():
        want = injected.eval()(x)
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now fails
    with pytest.raises(ImportError):
        import peft  # noqa: F401
    model = load_model(best).eval()
    assert set(model.state_dict()) == set(_model().state_dict())
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 2, SIZE, SIZE) and torch.isfinite(out).all()
        # The checkpoint as a model (predict -m last.ckpt): folded without peft, same as the injected network.
        torch.testing.assert_close(load_model(lora_run.out_dir / "checkpoints" / "last.ckpt").eval()(x), want,
                                   atol=1e-4, rtol=1e-4)


def test_the_start_line_gives_the_trainable_parameter_count(root, tmp_path, capfd):
    fit(_config(root, tmp_path / "run", max_iters=1))
    err = capfd.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("encoder delta:"))
    assert "LoRA r=8 alpha=16 on 31 1x1 convolutions, encoder frozen" in line
    assert "trainable parameters 997,922 of 3,956,770 (LoRA 169,472, decoder and head 828,450)" in line


def test_a_resumed_lora_run_continues_its_lora_weights(root, lora_run, tmp_path):
    stopped = fit(_config(root, tmp_path / "cut"), extra_callbacks=[_CtrlCAt(1)])
    assert stopped.interrupted and stopped.global_step == 2
    fit(_config(root, tmp_path / "cut"), resume=True)
    # Bit for bit the uninterrupted run: the resumed run started from the step-2 LoRA factors, not new ones.
    assert_same_weights(last_weights(tmp_path / "cut"), last_weights(lora_run.out_dir))


# -- configuration --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "dora"}, "encoder_delta.kind must be none or lora"),
    ({"rank": 0}, "encoder_delta.rank must be an integer >= 1"),
    ({"rank": 2.5}, "encoder_delta.rank must be an integer >= 1"),
    ({"alpha": 0}, "encoder_delta.alpha must be > 0"),
    ({"dropout": 1.0}, r"encoder_delta.dropout must be in \[0, 1\)"),
    ({"dropout": -0.1}, r"encoder_delta.dropout must be in \[0, 1\)"),
    ({"targets": ["conv_pw", "conv_pw"]}, "encoder_delta.targets repeat"),
    ({"targets": [""]}, "encoder_delta.targets must be module names"),
])
def test_bad_values_are_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        EncoderDeltaConfig(kind=kwargs.pop("kind", "lora"), **kwargs)
    assert "\n" not in str(info.value)


@pytest.fixture
def no_encoder_arch():
    name = "test_encoder_delta_plain"
    register_architecture(ArchSpec(name, lambda pretrained, size: nn.Conv2d(3, 2, 1), "test only", multiple=1))
    yield name
    _ARCHS.pop(name, None)


def test_lora_is_refused_where_there_is_no_smp_encoder(no_encoder_arch, tiny_config):
    with pytest.raises(ConfigError, match="conventional networks with an smp encoder"):
        TrainConfig(model=tiny_config("lora"), encoder_delta=LORA)
    with pytest.raises(ConfigError, match="encoder_delta and qat cannot be combined"):
        TrainConfig(network=SegModelConfig(arch=ARCH, image_size=SIZE), encoder_delta=LORA, qat=QATConfig())
    plain = create_model(no_encoder_arch, image_size=SIZE)
    with pytest.raises(ConfigError, match=f"{no_encoder_arch} has none") as info:
        apply_encoder_delta(plain, LORA)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="'conv_dw' names no 1x1 convolution of the encoder .*conv_pwl"):
        apply_encoder_delta(_model(), EncoderDeltaConfig(kind="lora", targets=["conv_dw"]))
    twice = apply_encoder_delta(_model(), LORA)
    with pytest.raises(ConfigError, match="already carries an encoder delta"):
        apply_encoder_delta(twice, LORA)


def test_the_section_comes_through_the_command_line(capsys):
    got = resolved(capsys, "train", "--arch", ARCH, "--set", "encoder_delta.kind=lora", "--set", "encoder_delta.rank=4")
    assert got["encoder_delta"]["kind"] == "lora" and got["encoder_delta"]["rank"] == 4
    assert got["encoder_delta"]["alpha"] == 16.0 and got["encoder_delta"]["train_bn"] is False
    err = refused(capsys, "train", "--arch", ARCH, "--set", "encoder_delta.kind=lora", "--set", "encoder_delta.rank=0")
    assert "encoder_delta.rank must be an integer >= 1" in err and len(err.strip().splitlines()) == 1
    err = refused(capsys, "train", "--set", "encoder_delta.kind=lora")  # CrackSAM: no smp encoder
    assert "encoder_delta is for conventional networks" in err
