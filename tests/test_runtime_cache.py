"""The runtime cache: predict/serve/stream run the fastest runtime whose export passed parity, exported
once per model into a cache keyed by the weights' hash (here a tmp $CRACKSAM_CACHE); the base install
brings ONNX Runtime, and where a runtime is missing the runtime line says which extra installs it."""

from __future__ import annotations

import json
import re
import shutil
import sys
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
from cracksam.inference.predictor import Predictor, open_predictor  # noqa: E402
from cracksam.models import SegModel, SegModelConfig, save_trained, segmodels  # noqa: E402
from cracksam.models.registry import unregister_model  # noqa: E402
from tests._convnet import DarkConvNet  # noqa: E402

ARCH = "test_dark_conv"
ROOT = Path(__file__).resolve().parents[1]


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
    return open_predictor(PredictOptions(model=str(model), **kw), rc.select_backend)


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
    from cracksam.service.served_model import load_service_model
    from cracksam.service.settings import ServiceSettings

    ckpt = conv_checkpoint(tmp_path / "m")
    assert ServiceSettings.from_env({"CRACKSAM_RUNTIME": "openvino"}).runtime == "openvino"
    with pytest.raises(ConfigError, match="runtime"):
        ServiceSettings(runtime="gpu").validated()
    loaded = load_service_model(ServiceSettings(model=str(ckpt), runtime="onnxruntime", threads=1).validated())
    assert loaded.predictor.describe()["runtime"] == "onnxruntime"
    image = synthetic_pair((64, 64), seed=2)[0]
    assert loaded.predictor.predict_one(image).mask().shape == (64, 64)
    assert np.isfinite(loaded.predictor.predict_one(image).prob).all()


def test_survey_mode_runs_the_runtime_asked_for(tmp_path, cache, photo, capsys):
    """``--table`` (and Ray) honour ``--runtime`` like the plain predict; they used to drop it and
    run PyTorch whatever was asked (same runtimes as the plain predict)."""
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


# -- a cache that cannot lie and never blocks prediction ---------------------------------------------


def _predict(photo: Path, ckpt: Path, out: Path, runtime: str) -> int:
    return main(["predict", str(photo), "-m", str(ckpt), "--runtime", runtime, "--threads", "1", "--out", str(out),
                 "--no-progress"])


def _mask(out: Path) -> np.ndarray:
    return cv2.imread(str(out / "photo_mask.png"), 0)


def _ran(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())["runtime"]


def _warnings(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def _built_once(tmp_path_factory):
    """A checkpoint, its cache entry and PyTorch's mask of the ``photo`` image, made once."""
    root = tmp_path_factory.mktemp("built")
    image = root / "photo.png"
    cv2.imwrite(str(image), cv2.cvtColor(synthetic_pair((96, 136), seed=5)[0], cv2.COLOR_RGB2BGR))
    ckpt = conv_checkpoint(root / "m")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRACKSAM_CACHE", str(root / "cache"))
        assert _predict(image, ckpt, root / "first", "auto") == 0
        assert _predict(image, ckpt, root / "torch", "torch") == 0
    (entry,) = (root / "cache" / "runtimes").iterdir()
    return ckpt, entry, _mask(root / "torch")


@pytest.fixture
def built(_built_once, cache):
    """``_built_once``'s entry copied into this test's cache (the checkpoint is shared: read only)."""
    ckpt, template, eager = _built_once
    entry = cache / template.name
    shutil.copytree(template, entry)
    return ckpt, entry, eager


def _same(mask: np.ndarray, eager: np.ndarray) -> bool:
    return bool(eager.any() and (mask != eager).mean() < 0.001)


def _sound(entry: Path) -> dict:
    """The entry's manifest, after checking it and every file it names against their checksums."""
    from cracksam.deployment import cache_integrity as ci

    manifest, problem = ci.read_cache_manifest(entry)
    assert problem is None and manifest is not None
    assert all(ci.verify_files(entry, c["file"], manifest["sha256"]) is None
               for c in manifest["candidates"] if c["passed"])
    return manifest


@pytest.mark.parametrize("name, runtime, damage", [
    ("model.onnx", "onnxruntime", "flip"), ("model.onnx", "onnxruntime", "truncate"),
    ("model_fp16.xml", "openvino", "flip"), ("model_fp16.xml", "openvino", "truncate"),
    ("model_fp16.bin", "openvino", "flip"), ("model_fp16.bin", "openvino", "truncate"),
])
def test_a_damaged_cached_file_is_re_exported_never_run(tmp_path, built, photo, capsys, name, runtime,
                                                         damage):
    pytest.importorskip("openvino")
    ckpt, entry, eager = built
    manifest = _sound(entry)
    assert {name, "manifest.json"} <= {p.name for p in entry.iterdir()} and name in manifest["sha256"]
    data = bytearray((entry / name).read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    (entry / name).write_bytes(bytes(data))
    out = tmp_path / "after"
    assert _predict(photo, ckpt, out, runtime) == 0
    err = capsys.readouterr().err
    (line,) = _warnings(err)
    assert name in line and "checksum" in line and "re-exported" in line
    assert _ran(out)["runtime"] == runtime and f"runtime: {runtime}" in err
    assert _same(_mask(out), eager)
    # The new entry replaced the damaged one in place; its figures are those of files that match.
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]
    rebuilt = _sound(entry)
    chosen = next(c for c in rebuilt["candidates"] if c["name"] == runtime)
    assert _ran(out)["mask_iou"] == chosen["mask_iou"] and f"mask IoU {chosen['mask_iou']:.4f}" in err


def test_a_damaged_file_that_cannot_be_re_exported_is_skipped_for_pytorch(tmp_path, built, photo, capsys,
                                                                           monkeypatch):
    ckpt, entry, eager = built
    data = bytearray((entry / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (entry / "model.onnx").write_bytes(bytes(data))

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rc, "build_entry", full)
    out = tmp_path / "after"
    assert _predict(photo, ckpt, out, "onnxruntime") == 0
    err = capsys.readouterr().err
    (line,) = _warnings(err)
    assert "model.onnx does not match its checksum" in line and "No space left" in line and "PyTorch" in line
    assert _ran(out)["runtime"] == "torch" and "mask IoU" not in err
    assert np.array_equal(_mask(out), eager)
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary folder left


@pytest.mark.parametrize("patch, says", [
    ("verify_files", "re-exported, but model.onnx does not match its checksum"),
    ("_open", "re-exported, but cannot open model.onnx (RuntimeError: Exception from"),
])
def test_an_entry_still_unusable_after_re_exporting_runs_pytorch(tmp_path, built, photo, capsys, monkeypatch, patch,
                                                                   says):
    ckpt, entry, eager = built
    real_open = rc._open

    def cannot_open(runtime, path, threads):  # the entry's file, not the re-export's parity check
        if path.parent == entry:
            raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:97:\n[ ERROR ] cannot read model")
        return real_open(runtime, path, threads)

    monkeypatch.setattr(rc, patch, {"verify_files": lambda folder, file, sums: f"{file} does not match its checksum",
                                    "_open": cannot_open}[patch])
    out = tmp_path / "after"
    assert _predict(photo, ckpt, out, "onnxruntime") == 0
    (line,) = _warnings(capsys.readouterr().err)
    assert says in line and line.endswith("running PyTorch")
    assert _ran(out)["runtime"] == "torch" and np.array_equal(_mask(out), eager)


def _edited_figure(manifest_path: Path) -> bytes:
    manifest = json.loads(manifest_path.read_text())
    for c in manifest["candidates"]:
        c["mask_iou"] = 0.5  # a parity figure that was never measured
    return json.dumps(manifest).encode()


@pytest.mark.parametrize("content", [
    lambda path: np.random.default_rng(0).bytes(4096), lambda path: b"[]", lambda path: b'{"candidates": [{}]}',
    lambda path: path.read_bytes()[:100], _edited_figure,
], ids=["random-bytes", "list", "wrong-shape", "truncated", "edited-figure"])
def test_a_malformed_manifest_is_re_exported(tmp_path, built, photo, capsys, content):
    ckpt, entry, eager = built
    (entry / "manifest.json").write_bytes(content(entry / "manifest.json"))
    out = tmp_path / "after"
    assert _predict(photo, ckpt, out, "auto") == 0
    err = capsys.readouterr().err
    (line,) = _warnings(err)
    assert "manifest.json" in line and "re-exported" in line and "mask IoU 0.5000" not in err
    assert _same(_mask(out), eager)
    assert _sound(entry)["fastest"] == _ran(out)["runtime"] or _ran(out)["runtime"] == "torch"


def test_a_malformed_manifest_is_reported_when_pytorch_is_all_that_passes(tmp_path, built, photo, capsys,
                                                                            monkeypatch):
    import cracksam.deployment.export as export

    ckpt, entry, eager = built
    (entry / "manifest.json").write_bytes(b"[]")
    for precision in ("fp32", "fp16"):
        monkeypatch.setitem(export.MIN_IOU, precision, 1.01)  # the re-export passes nothing: PyTorch runs
    out = tmp_path / "after"
    assert _predict(photo, ckpt, out, "auto") == 0
    (line,) = _warnings(capsys.readouterr().err)
    assert "manifest.json is a JSON list" in line and "re-exported" in line
    assert _ran(out)["runtime"] == "torch" and np.array_equal(_mask(out), eager)


def _read_only(monkeypatch, root: Path) -> None:
    """Nothing can be created under ``root`` (as on a read-only mount; chmod does not stop root)."""
    import errno
    import os

    real_mkdir, real_open = os.mkdir, os.open

    def refuse(path) -> None:
        if isinstance(path, (str, os.PathLike)) and Path(os.fspath(path)).is_relative_to(root):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))

    def mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("manifest", [None, b"[]"], ids=["empty", "damaged-manifest"])
def test_a_read_only_cache_runs_pytorch_in_one_line(tmp_path, cache, photo, capsys, monkeypatch, manifest):
    ckpt = conv_checkpoint(tmp_path / "m")
    assert _predict(photo, ckpt, tmp_path / "torch", "torch") == 0
    cache.mkdir(parents=True)
    if manifest is not None:
        (cache / rc.model_key(ckpt)).mkdir()
        (cache / rc.model_key(ckpt) / "manifest.json").write_bytes(manifest)
    capsys.readouterr()
    _read_only(monkeypatch, cache)
    out = tmp_path / "after"
    assert _predict(photo, ckpt, out, "auto") == 0
    (line,) = _warnings(capsys.readouterr().err)
    assert "Read-only file system" in line and "running PyTorch" in line
    assert _ran(out)["runtime"] == "torch" and np.array_equal(_mask(out), _mask(tmp_path / "torch"))


def _fail_onnx_write(monkeypatch) -> None:
    import importlib

    export_onnx = importlib.import_module("cracksam.deployment.export_onnx")  # the package exports a function

    def write(path, data) -> None:
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(export_onnx, "atomic_write_bytes", write)


def _fail_openvino_write(monkeypatch) -> None:
    pytest.importorskip("openvino")
    import cracksam.deployment.export as export

    def save(ov, model, xml_path, compress_to_fp16):
        raise RuntimeError("Exception from src/core/src/pass/serialize.cpp:1\nbasic_ios::clear: iostream error")

    monkeypatch.setattr(export, "save_ir", save)


@pytest.mark.parametrize("fail", [_fail_onnx_write, _fail_openvino_write], ids=["onnx", "openvino"])
def test_a_full_cache_disk_runs_pytorch_in_one_line(tmp_path, cache, photo, capsys, monkeypatch, fail):
    ckpt = conv_checkpoint(tmp_path / "m")
    assert _predict(photo, ckpt, tmp_path / "torch", "torch") == 0
    capsys.readouterr()
    fail(monkeypatch)
    out = tmp_path / "after"
    assert _predict(photo, ckpt, out, "auto") == 0
    (line,) = _warnings(capsys.readouterr().err)
    assert ("No space left on device" in line or "basic_ios::clear" in line) and "running PyTorch" in line
    assert _ran(out)["runtime"] == "torch" and np.array_equal(_mask(out), _mask(tmp_path / "torch"))
    assert list(cache.iterdir()) == []  # neither an entry nor its temporary folder


def test_stale_temporary_folders_are_removed_when_an_entry_is_built(tmp_path, cache, photo):
    import os
    import time

    ckpt = conv_checkpoint(tmp_path / "m")
    key = rc.model_key(ckpt)
    stale, young, other = cache / f".{key}.k1ll3d_x", cache / f".{key}.runn1ng_", cache / ".not-ours"
    for folder in (stale, young, other):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"\0" * 1000)
    two_hours_ago = time.time() - 7200
    for folder in (stale, other):
        os.utime(folder, (two_hours_ago, two_hours_ago))
    assert _predict(photo, ckpt, tmp_path / "out", "auto") == 0
    assert sorted(p.name for p in cache.iterdir()) == sorted([key, young.name, other.name])


# --- which runtimes the install brings, and the line when one is missing --------------------------


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_base_install_brings_onnx_runtime_and_the_deploy_extra_the_rest():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = _names(project["dependencies"])
    # The exporter (torch.onnx needs onnx) and the runtime auto picks: predict is fast after `pip install .`.
    assert {"onnx", "onnxruntime"} <= base
    deploy = _names(project["optional-dependencies"]["deploy"])
    assert {"openvino", "nncf", "onnxruntime"} <= deploy  # the hint's extra gives every runtime
    assert not {"openvino", "nncf"} & base


def _hide(monkeypatch, *modules: str) -> None:
    # A None entry in sys.modules makes find_spec say "not found" and an import raise ImportError.
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_without_any_runtime_the_line_says_which_extra_installs_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "cache"))
    _hide(monkeypatch, "onnxruntime", "openvino")
    backend, info = rc.select_backend(tmp_path, conv_segmodel(), "auto", threads=1)
    line = rc.describe_choice(info)
    assert backend.name == "torch" and "neither onnxruntime nor openvino is installed" in line
    assert "pip install 'cracksam[deploy]'" in line
    assert not (tmp_path / "cache").exists()  # nothing was exported


def test_with_onnxruntime_only_the_line_names_openvino_and_its_extra(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "cache"))
    _hide(monkeypatch, "openvino")
    ckpt = conv_checkpoint(tmp_path / "m")
    _, info = rc.select_backend(ckpt, conv_segmodel(), "auto", threads=1)
    line = rc.describe_choice(info)
    assert info["not_installed"] == ["openvino"]
    assert "openvino not installed: pip install 'cracksam[deploy]'" in line, line
    # The cache entry made without OpenVINO is not the one used once it is installed: the next run
    # exports again and can pick OpenVINO (the hint would otherwise never come true).
    without = rc.model_key(ckpt)
    monkeypatch.delitem(sys.modules, "openvino")
    if rc._found("openvino"):
        assert rc.model_key(ckpt) != without
