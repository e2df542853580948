"""The model zoo (students and the paper's baselines): every registered architecture builds with
random weights, trains (forward + backward), exports to ONNX with ONNX Runtime matching PyTorch;
``cracksam info --model`` / ``--list-models``; size and ``pretrained`` handling.

Heavy architectures (over ~30 M parameters) run only with ``-m slow``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cracksam.cli.main import main
from cracksam.errors import ConfigError
from cracksam.models import create, list_architectures
from cracksam.models import segmodels as segmodels_mod
from cracksam.models.registry import list_models
from cracksam.models.segmodels import get_architecture

SIZE = 64
HEAVY = {"resnet101_deeplabv3plus", "resnet101_pspnet", "segformer_mit_b5", "swin_t_upernet", "swin_b_upernet",
         "vit_b_upernet"}
STUDENTS = {"unet_mobilenetv3_small", "hrnet_w18_fcn", "resnet50_fcn", "resnet50_deeplabv3plus", "mobilenetv3_lraspp",
            # compared for thin cracks at native scale (models/zoo_thin.py)
            "unet_mobilenetv3_small_fr", "unet_resnet18", "unet_resnet34", "unet_resnet18_fr", "hrnet_w18_small_fcn",
            # ImageNet encoders from installed wheels (models/zoo_lite.py)
            "unet_efficientnet_lite0", "unet_efficientnet_lite1", "unet_efficientnet_lite2",
            "unet_efficientnet_lite0_wide"}
BASELINES = {"vgg16_unet", "unet", "swin_t_upernet", "swin_b_upernet", "resnet101_deeplabv3plus", "resnet101_pspnet",
             "vit_b_upernet", "segformer_mit_b5"}
LIGHT_LIMIT = 35_000_000  # a model above this belongs in HEAVY (the default test set stays fast)


def _arch_params() -> list:
    return [pytest.param(name, id=name, marks=[pytest.mark.slow] if name in HEAVY else [])
            for name in list_architectures()]


@contextlib.contextmanager
def _no_network():
    """Random weights must never be downloaded: any connection attempt fails the build."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model with pretrained=False tried to open a network connection")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module", params=_arch_params())
def built(request):
    torch.manual_seed(0)
    with _no_network():
        model = create(request.param, image_size=SIZE)
    return request.param, model


# -- the registry ----------------------------------------------------------------------------------


def test_registry_has_the_students_and_baselines():
    names = set(list_architectures())
    assert STUDENTS | BASELINES <= names
    assert set(list_architectures("student")) == STUDENTS
    assert set(list_architectures("baseline")) == BASELINES
    assert HEAVY <= names
    for name in names:
        spec = get_architecture(name)
        assert spec.role in ("student", "baseline") and spec.description and spec.multiple >= 1
    for name in ("mobilenetv3_lraspp", "hrnet_w18_fcn"):  # students that are also Table 7 baselines
        assert "baseline" in get_architecture(name).description
    assert "stands in" in get_architecture("unet").description
    assert names <= set(list_models())


def test_light_models_are_light():
    """The default test set is the architectures under ~30 M parameters; keep HEAVY honest."""
    for name in sorted(set(list_architectures()) - HEAVY):
        assert _n_params(create(name, image_size=SIZE, device="meta")) < LIGHT_LIMIT, name


def test_hrnet_w18_fcn_has_the_papers_parameter_count():
    model = create("hrnet_w18_fcn", image_size=SIZE, device="meta")
    spec = get_architecture("hrnet_w18_fcn")
    assert spec.paper_params_m == 9.6
    assert abs(_n_params(model) / 1e6 - spec.paper_params_m) < 0.05  # 9.64 M


@pytest.mark.parametrize("name", list_architectures())
def test_image_size_must_be_a_multiple(name):
    multiple = get_architecture(name).multiple
    bad = 2 * multiple + max(1, multiple // 2)
    with pytest.raises(ConfigError, match=f"multiple of {multiple}"):
        create(name, image_size=bad)
    assert SIZE % multiple == 0  # every architecture takes the test size


def test_pretrained_is_recorded_and_passed_to_the_builder(monkeypatch):
    calls = []
    spec = get_architecture("unet_efficientnet_lite0")  # one with offline ImageNet weights

    def fake_build(pretrained, image_size):
        calls.append((pretrained, image_size))
        return torch.nn.Conv2d(3, 2, 1)

    monkeypatch.setitem(segmodels_mod._ARCHS, spec.name, dataclasses.replace(spec, build=fake_build))
    model = create(spec.name, image_size=96, pretrained=True)
    assert model.config.pretrained is True and calls == [(True, 96)]
    assert create(spec.name, image_size=SIZE).config.pretrained is False and calls[-1] == (False, SIZE)


class _Asked(Exception):
    """Raised by the stand-ins for the libraries' constructors, carrying what they were asked."""


def _recorder(*args, **kwargs):
    raise _Asked(args, kwargs)


def _asks_for_imagenet(kwargs: dict) -> bool:
    if "encoder_weights" in kwargs:  # smp: "imagenet", or True for timm (tu-) encoders
        return kwargs["encoder_weights"] in ("imagenet", True)
    if "weights_backbone" in kwargs:  # torchvision: the backbone's ImageNet weights, no full-model weights
        return kwargs["weights_backbone"] is not None and kwargs.get("weights") is None
    return kwargs.get("pretrained") is True  # timm


@pytest.mark.parametrize("name", [n for n in list_architectures() if not get_architecture(n).offline_weights])
def test_pretrained_builders_ask_for_imagenet_weights(name, monkeypatch):
    """``pretrained=True`` requests ImageNet encoder weights from each library (intercepted: no
    download) and ``pretrained=False`` requests none.  (SegModel refuses ``pretrained`` for these:
    only the EfficientNet-Lite U-Nets have offline weights, tested in test_lite_weights.py.)"""
    import segmentation_models_pytorch as smp
    import timm
    import torchvision.models.segmentation as tvseg

    monkeypatch.setattr(timm, "create_model", _recorder)
    for arch in ("Unet", "DeepLabV3Plus", "PSPNet", "UPerNet", "Segformer"):
        monkeypatch.setattr(smp, arch, _recorder)
    for fn in ("fcn_resnet50", "lraspp_mobilenet_v3_large"):
        monkeypatch.setattr(tvseg, fn, _recorder)
    spec = get_architecture(name)
    for pretrained in (True, False):
        with pytest.raises(_Asked) as asked:
            spec.build(pretrained, SIZE)
        assert _asks_for_imagenet(asked.value.args[1]) is pretrained


# -- every architecture: train step and ONNX export ------------------------------------------------


def test_forward_backward(built, images64):
    name, model = built
    model.train()
    model.zero_grad(set_to_none=True)
    logits = model(images64)
    assert logits.shape == (2, 2, SIZE, SIZE) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    target = (images64.mean(dim=1) < 100).long()
    F.cross_entropy(logits, target).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable, name
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)
    assert sum(int(p.grad.count_nonzero()) for _, p in trainable) > 0
    model.zero_grad(set_to_none=True)


def test_onnx_export_matches_torch(built, tmp_path):
    from cracksam.deployment.export import check_parity, export_onnx, parity_report
    from cracksam.inference.backends import OnnxRuntimeBackend, TorchBackend

    name, model = built
    model.eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", verify=False)
    onnx_backend = OnnxRuntimeBackend(path)
    assert onnx_backend.image_size == SIZE
    assert onnx_backend.model_config == model.config
    images = (np.random.default_rng(3).random((3, 3, SIZE, SIZE)) * 255).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(images)).numpy()
    out = onnx_backend.run(images)  # batch 3: the batch axis is dynamic
    assert out.shape == ref.shape == (3, 2, SIZE, SIZE)
    scale = max(1.0, float(np.abs(ref).max()))
    assert float(np.abs(out - ref).max()) <= 1e-3 * scale, name
    check_parity(parity_report(TorchBackend(model), onnx_backend, images[:1]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_t_upernet", "vit_b_upernet"])
def test_size_dependent_builders_take_448(name):
    """Swin and ViT are built for the image size (window masks, position embeddings)."""
    model = create(name, image_size=448).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 448, 448) * 255)
    assert out.shape == (1, 2, 448, 448) and torch.isfinite(out).all()


# -- cracksam info ---------------------------------------------------------------------------------


def test_info_model_json_counts_parameters(capsys):
    assert main(["info", "--model", "hrnet_w18_fcn", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    expected = _n_params(create("hrnet_w18_fcn", image_size=448))
    assert payload["total_parameters"] == payload["trainable_parameters"] == expected
    assert payload["model"]["arch"] == "hrnet_w18_fcn" and payload["model"]["image_size"] == 448
    assert payload["role"] == "student" and payload["paper_parameters_m"] == 9.6


def test_info_model_table(capsys):
    assert main(["info", "--model", "unet_mobilenetv3_small", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    expected = _n_params(create("unet_mobilenetv3_small", image_size=64))
    assert f"{expected:,}" in out and f"{expected / 1e6:.1f}" in out
    # a native-resolution network: no "@ 64" (it runs at the photo's size), the crop size it was built for
    assert "unet_mobilenetv3_small (student) runs at the photo's own size" in out and "64×64" in out
    assert "@ 64" not in out
    assert main(["info", "--model", "hrnet_w18_fcn"]) == 0
    assert "9.6" in capsys.readouterr().out


def test_info_model_still_counts_cracksam(capsys):
    assert main(["info", "--model", "cracksam_vit_h_lora", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"]["backbone"] == "vit_h" and payload["total_parameters"] > 600_000_000


def test_info_model_errors(capsys):
    assert main(["info", "--model", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "unknown model" in err
    assert main(["info", "--model", "hrnet_w18_fcn", "--image-size", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err


def test_info_list_models(capsys):
    assert main(["info", "--list-models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(list_models())
    assert {n for n, r in rows.items() if r["role"] == "student"} == STUDENTS
    assert {n for n, r in rows.items() if r["role"] == "baseline"} == BASELINES
    assert rows["cracksam_vit_h_adapter_lora"]["role"] == "cracksam"
    assert "adapter+lora" in rows["cracksam_vit_h_adapter_lora"]["description"]
    assert main(["info", "--list-models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_architectures())
