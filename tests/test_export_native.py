"""``cracksam export`` of a fully convolutional model runs like ``predict``: dynamic
height and width by default, checked against PyTorch on whole non-square photos, and ``predict -m
model.onnx`` gives the mask the PyTorch model gives.  CrackSAM keeps its fixed S×S graph."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402

from cracksam.cli.main import main  # noqa: E402
from cracksam.data.synthetic import synthetic_pair  # noqa: E402
from cracksam.models.registry import unregister_model  # noqa: E402
from tests.test_runtime_cache import ARCH, conv_checkpoint  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _unregister_test_network():
    """conv_checkpoint registers a test network; the zoo and registry tests list every network."""
    yield
    unregister_model(ARCH)


def _input_dims(path) -> list[str | int]:
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


def _mask(folder, stem: str) -> np.ndarray:
    return cv2.imread(str(folder / f"{stem}_mask.png"), cv2.IMREAD_GRAYSCALE) > 0


def test_default_export_of_a_native_model_predicts_whole_photos_like_pytorch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "cache"))
    ckpt = conv_checkpoint(tmp_path / "m")  # trained at 64 px, native mode, stride 8
    photo = tmp_path / "photos" / "wall.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.cvtColor(synthetic_pair((150, 230), seed=4)[0], cv2.COLOR_RGB2BGR))
    out = tmp_path / "e"
    assert main(["export", "-m", str(ckpt), "--targets", "onnx", "--out", str(out), "--samples", str(photo.parent),
                 "--threads", "1"]) == 0, capsys.readouterr().err
    assert "runs at the photo's own size" in capsys.readouterr().err  # not "(64×64)"
    assert _input_dims(out / "model.onnx") == ["batch", 3, "height", "width"]
    report = json.loads((out / "parity.json").read_text())
    assert f"1 whole photo(s) from {photo.parent}: 232×152 px" in report["samples"]  # padded to the stride
    (result,) = report["results"]
    assert result["parity"]["inputs"] == "whole photos" and result["parity"]["mask_iou"] >= 0.99

    args = [str(photo), "--threads", "1", "--no-progress"]
    assert main(["predict", *args, "-m", str(out / "model.onnx"), "--out", str(tmp_path / "p_onnx")]) == 0
    assert main(["predict", *args, "-m", str(ckpt), "--runtime", "torch", "--out", str(tmp_path / "p_torch")]) == 0
    summary = json.loads((tmp_path / "p_onnx" / "summary.json").read_text())
    assert summary["runtime"]["runtime"] == "onnxruntime" and summary["predictor"]["dynamic_shapes"] is True
    ours, theirs = _mask(tmp_path / "p_onnx", "wall"), _mask(tmp_path / "p_torch", "wall")
    assert ours.shape == (150, 230) and theirs.sum() > 100
    assert np.logical_and(ours, theirs).sum() / np.logical_or(ours, theirs).sum() >= 0.99  # strict IoU


def test_no_dynamic_shape_keeps_a_fixed_graph_checked_on_windows(tmp_path, monkeypatch, capsys):
    ckpt = conv_checkpoint(tmp_path / "m")
    out = tmp_path / "e"
    assert main(["export", "-m", str(ckpt), "--targets", "onnx", "--out", str(out), "--no-dynamic-shape",
                 "--threads", "1"]) == 0, capsys.readouterr().err
    assert "(64×64)" in capsys.readouterr().err
    assert _input_dims(out / "model.onnx") == ["batch", 3, 64, 64]
    (result,) = json.loads((out / "parity.json").read_text())["results"]
    assert result["parity"]["inputs"] == "S×S windows"


def test_cracksam_keeps_its_fixed_size_by_default(tmp_path, capsys):
    from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, export_full

    torch.manual_seed(0)
    model = build_cracksam(CrackSAMConfig(backbone="tiny", image_size=64, delta=DeltaConfig(kind="lora")))
    ckpt = export_full(model, tmp_path / "full")
    out = tmp_path / "e"
    assert main(["export", "-m", str(ckpt), "--targets", "onnx", "--out", str(out), "--threads", "1",
                 "--min-iou", "0"]) == 0, capsys.readouterr().err
    assert "(64×64)" in capsys.readouterr().err
    assert _input_dims(out / "model.onnx") == ["batch", 3, 64, 64]
