"""`cracksam evaluate` scores any runtime through the Predictor: an OpenVINO IR and an ONNX file of a
model get the scores of the PyTorch model they were exported from."""

from __future__ import annotations

import json

import pytest
import torch

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, export_full

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

KEYS = ("precision", "recall", "f1", "iou", "f1_tol2", "cldice")



def _lora_model():
    """A tiny CrackSAM with non-zero LoRA, so that its masks are neither empty nor full."""
    torch.manual_seed(0)
    model = build_cracksam(CrackSAMConfig("tiny", 64, DeltaConfig("lora")))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.2)
    return model

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from cracksam.deployment.export import export_onnx

    root = tmp_path_factory.mktemp("evrt")
    model = _lora_model()
    return {"data": make_dataset(root / "syn", n=8, size=(80, 80)), "torch": export_full(model, root / "torch"),
            "onnx": export_onnx(model, root / "model.onnx"), "root": root}


def _evaluate(models, data, out) -> dict[str, dict[str, float]]:
    argv = ["evaluate", *[a for m in models for a in ("-m", str(m))], "--test", str(data), "--test-split", "all",
            "--conditions", "clean", "--device", "cpu", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    return {r["model"]: r["dataset_level"] for r in json.loads((out / "results.json").read_text())}


def test_evaluate_scores_an_openvino_ir_like_pytorch(exported, tmp_path):
    pytest.importorskip("openvino")
    from cracksam.deployment.export import export_openvino

    xml = export_openvino(exported["onnx"], tmp_path / "model_fp32.xml", fp16=False)
    scores = _evaluate([exported["torch"], xml], exported["data"], tmp_path / "ev")
    reference, ir = scores["torch"], scores["model_fp32"]
    assert 0 < reference["iou"] < 1
    for key in KEYS:
        assert ir[key] == pytest.approx(reference[key], abs=1e-3), key
    table = json.loads((tmp_path / "ev" / "table.json").read_text())
    assert table["rows"][1]["total_parameters"] == table["rows"][0]["total_parameters"] > 0


def test_evaluate_scores_an_onnx_file_through_the_predictor(exported, tmp_path, monkeypatch):
    """The exported file really runs in ONNX Runtime (not a silent PyTorch fallback): its backend's
    run is what produces the scores."""
    from cracksam.inference.backends import OnnxRuntimeBackend

    calls = []
    real = OnnxRuntimeBackend.run

    def counting(self, x):
        calls.append(x.shape)
        return real(self, x)

    monkeypatch.setattr(OnnxRuntimeBackend, "run", counting)
    scores = _evaluate([exported["torch"], exported["onnx"]], exported["data"], tmp_path / "ev")
    assert calls and all(shape[1:] == (3, 64, 64) for shape in calls)
    for key in KEYS:
        assert scores["model"][key] == pytest.approx(scores["torch"][key], abs=1e-3), key


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("runs") / "syn", n=12, size=(80, 80))


def test_evaluate_scores_an_onnx_export_like_pytorch(data, tmp_path):
    pytest.importorskip("onnxruntime")
    from cracksam.deployment.export import export_onnx

    model = _lora_model()
    full = export_full(model, tmp_path / "torch")
    onnx = export_onnx(model, tmp_path / "deployed.onnx")
    rc = main(["evaluate", "-m", str(full), "-m", str(onnx), "--test", str(data), "--test-split", "all",
               "--conditions", "clean", "--device", "cpu", "--out", str(tmp_path / "ev"), "--no-progress"])
    assert rc == 0
    results = {r["model"]: r["dataset_level"] for r in json.loads((tmp_path / "ev" / "results.json").read_text())}
    torch_scores, onnx_scores = results["torch"], results["deployed"]
    assert 0 < torch_scores["iou"] < 1
    for key in ("precision", "recall", "f1", "iou", "f1_tol2", "cldice"):
        assert onnx_scores[key] == pytest.approx(torch_scores[key], abs=1e-3), key
    rows = json.loads((tmp_path / "ev" / "table.json").read_text())["rows"]
    assert rows[1]["total_parameters"] == rows[0]["total_parameters"] > 0  # counted from the export's config
