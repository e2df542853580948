"""Issue 12.3: predict/serve/stream run the fastest runtime whose export passed parity, exported
once per model into a cache keyed by the weights' hash (here a tmp $CRACKSAM_CACHE)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import cracksam.deployment.runtime_cache as rc  # noqa: E402
from cracksam.cli.main import main  # noqa: E402
from cracksam.data.synthetic import synthetic_pair  # noqa: E402
from cracksam.errors import ConfigError, CrackSAMError  # noqa: E402
from cracksam.inference.options import PredictOptions  # noqa: E402
from cracksam.inference.predictor import Predictor  # noqa: E402
from cracksam.models import SegModel, SegModelConfig, save_trained, segmodels  # noqa: E402
from cracksam.models.registry import unregister_model  # noqa: E402
from tests._convnet import DarkConvNet  # noqa: E402

ARCH = "test_dark_conv"


def ensure_dark_conv_arch() -> None:
    if ARCH not in segmodels._ARCHS:
        segmodels.register_architecture(segmodels.ArchSpec(ARCH, lambda pretrained, size: DarkConvNet(),
                                                           "test only", multiple=8))


@pytest.fixture(autouse=True, scope="module")
def _dark_conv_arch():
    """Registered for this module only: the zoo and registry tests list every registered network."""
    ensure_dark_conv_arch()
    yield
    unregister_model(ARCH)


def conv_segmodel(image_size: int = 64) -> SegModel:
    ensure_dark_conv_arch()
    return SegModel(SegModelConfig(arch=ARCH, image_size=image_size)).eval()


def conv_checkpoint(folder: Path) -> Path:
    return save_trained(conv_segmodel(), folder)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("CRACKSAM_CACHE", str(root))
    return root / "runtimes"


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(synthetic_pair((96, 136), seed=5)[0], cv2.COLOR_RGB2BGR))
    return path


def test_auto_exports_once_caches_by_weights_hash_and_says_which(tmp_path, cache, photo, monkeypatch, capsys):
    ckpt = conv_checkpoint(tmp_path / "m")
    out = tmp_path / "p1"
    assert main(["predict", str(photo), "-m", str(ckpt), "--runtime", "auto", "--threads", "1", "--out", str(out),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    (entry,) = cache.iterdir()
    assert entry.name == rc.model_key(ckpt) and "exporting" in err and str(entry) in err
    manifest = json.loads((entry / "manifest.json").read_text())
    chosen = json.loads((out / "summary.json").read_text())["runtime"]
    assert chosen["runtime"] == manifest["fastest"] and f"runtime: {chosen['runtime']}" in err
    assert all(c["passed"] and c["mask_iou"] >= c["min_iou"] for c in manifest["candidates"])
    assert {c["runtime"] for c in manifest["candidates"]} >= {"onnxruntime"}
    onnx = next(c for c in manifest["candidates"] if c["runtime"] == "onnxruntime")
    assert onnx["dynamic_shape"]  # native prediction sees the whole photo, as in PyTorch
    # Second run: no export, same cache entry; and the masks are those of PyTorch.
    monkeypatch.setattr(rc, "build_entry", lambda *a, **k: pytest.fail("exported twice"))
    assert main(["predict", str(photo), "-m", str(ckpt), "--runtime", "auto", "--threads", "1",
                 "--out", str(tmp_path / "p2"), "--no-progress"]) == 0
    assert "exporting" not in capsys.readouterr().err
    assert main(["predict", str(photo), "-m", str(ckpt), "--runtime", "torch", "--out", str(tmp_path / "t"),
                 "--no-progress"]) == 0
    fast = cv2.imread(str(tmp_path / "p2" / "photo_mask.png"), 0)
    eager = cv2.imread(str(tmp_path / "t" / "photo_mask.png"), 0)
    assert (fast != eager).mean() < 0.001 and eager.any()
    # Other weights, other key.
    other = save_trained(SegModel(SegModelConfig(arch=ARCH, image_size=64, inference_scale=0.5)), tmp_path / "o")
    assert rc.model_key(other) != rc.model_key(ckpt)


def _open(model: Path, **kw) -> Predictor:
    return rc.open_predictor(PredictOptions(model=str(model), **kw))


def test_an_export_failing_parity_is_deleted_and_never_used(tmp_path, cache, photo, monkeypatch):
    import cracksam.deployment.export as export

    ckpt = conv_checkpoint(tmp_path / "m")
    monkeypatch.setitem(export.MIN_IOU, "fp32", 1.01)  # nothing can pass
    monkeypatch.setitem(export.MIN_IOU, "fp16", 1.01)
    predictor = _open(ckpt, runtime="auto", threads=1)
    assert predictor.backend.name == "torch" and "no export passed" in predictor.runtime_info["reason"]
    (entry,) = cache.iterdir()
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["candidates"] and not any(c["passed"] for c in manifest["candidates"])
    assert not list(entry.glob("*.onnx")) and not list(entry.glob("*.xml")) and not list(entry.glob("*.bin"))
    with pytest.raises(CrackSAMError, match="refused"):
        _open(ckpt, runtime="onnxruntime", threads=1)
    assert main(["predict", str(photo), "-m", str(ckpt), "--runtime", "onnxruntime", "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 2


def test_runtime_choices_are_validated(tmp_path, cache, photo, capsys):
    ckpt = conv_checkpoint(tmp_path / "m")
    with pytest.raises(ConfigError, match="unknown runtime"):
        _open(ckpt, runtime="tensorrt")
    with pytest.raises(ConfigError, match="unknown runtime"):
        Predictor.from_path(ckpt, runtime="tensorrt")
    assert main(["predict", str(photo), "-m", str(ckpt), "--runtime", "fast", "--out", str(tmp_path / "x")]) == 2
    assert "unknown runtime" in capsys.readouterr().err
    from cracksam.deployment import export_onnx

    onnx = export_onnx(conv_segmodel(), tmp_path / "m.onnx")
    assert _open(onnx, runtime="auto").runtime_info["runtime"] == "onnxruntime"
    assert Predictor.from_path(onnx).runtime_info["runtime"] == "onnxruntime"
    with pytest.raises(ConfigError, match="is a onnxruntime model"):
        _open(onnx, runtime="openvino")
    # torch: no cache is written at all.
    assert _open(ckpt, runtime="torch").backend.name == "torch" and not cache.exists()
    assert Predictor.from_path(ckpt).backend.name == "torch" and not cache.exists()


def test_the_inference_layer_never_exports(tmp_path, cache):
    """Predictor.from_path (inference) opens what is named; choosing or building an export is the
    runtime cache's (deployment), so auto and a checkpoint run through ONNX Runtime are refused there."""
    ckpt = conv_checkpoint(tmp_path / "m")
    with pytest.raises(ConfigError, match="open_predictor"):
        Predictor.from_path(ckpt, runtime="auto")
    with pytest.raises(ConfigError, match="PyTorch checkpoint"):
        Predictor.from_path(ckpt, runtime="onnxruntime")
    assert not cache.exists()
    assert _open(ckpt, runtime="onnxruntime", threads=1).backend.name == "onnxruntime" and cache.exists()


def test_serve_settings_take_the_runtime(tmp_path, cache):
    from cracksam.service.inference import load_model
    from cracksam.service.settings import ServiceSettings

    ckpt = conv_checkpoint(tmp_path / "m")
    assert ServiceSettings.from_env({"CRACKSAM_RUNTIME": "openvino"}).runtime == "openvino"
    with pytest.raises(ConfigError, match="runtime"):
        ServiceSettings(runtime="gpu").validated()
    loaded = load_model(ServiceSettings(model=str(ckpt), runtime="onnxruntime", threads=1).validated())
    assert loaded.predictor.describe()["runtime"] == "onnxruntime"
    image = synthetic_pair((64, 64), seed=2)[0]
    assert loaded.predictor.predict_one(image).mask().shape == (64, 64)
    assert np.isfinite(loaded.predictor.predict_one(image).prob).all()


def test_survey_mode_runs_the_runtime_asked_for(tmp_path, cache, photo, capsys):
    """``--table`` (and Ray) honour ``--runtime`` like the plain predict; they used to drop it and
    run PyTorch whatever was asked (issue 18: same runtimes as the plain predict)."""
    pytest.importorskip("pyarrow")
    ckpt = conv_checkpoint(tmp_path / "m")
    common = [str(photo), "-m", str(ckpt), "--runtime", "onnxruntime", "--threads", "1", "--no-progress"]
    assert main(["predict", *common, "--out", str(tmp_path / "plain")]) == 0
    assert main(["predict", *common, "--table", "--out", str(tmp_path / "table")]) == 0
    err = capsys.readouterr().err
    summary = json.loads((tmp_path / "table" / "summary.json").read_text())
    assert summary["runtime"]["runtime"] == "onnxruntime" and "runtime: onnxruntime" in err
    plain = cv2.imread(str(tmp_path / "plain" / "photo_mask.png"), 0)
    table = cv2.imread(str(tmp_path / "table" / "photo_mask.png"), 0)
    assert plain.any() and np.array_equal(plain, table)
    # And torch when asked: the choice is the option's, not a fixed one.
    assert main(["predict", str(photo), "-m", str(ckpt), "--runtime", "torch", "--threads", "1", "--no-progress",
                 "--table", "--out", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["runtime"]["runtime"] == "torch"
