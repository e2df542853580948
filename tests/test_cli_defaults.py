"""What every command does without being told: thread counts within the cores, the bundled model as
the default model, and one line (an error, or a warning and a fallback) for a GPU that is not there."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.errors import ConfigError
from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, export_full


@pytest.fixture(scope="module")
def tiny_full(tmp_path_factory):
    """A tiny CrackSAM with every weight saved (no base needed) and a photo to segment."""
    root = tmp_path_factory.mktemp("tiny_full")
    torch.manual_seed(0)
    model = build_cracksam(CrackSAMConfig(backbone="tiny", image_size=64, delta=DeltaConfig(kind="lora")))
    ckpt = export_full(model, root / "full")
    image = root / "photo.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8))
    return ckpt, image


def _pretend_cores(monkeypatch, n: int) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: n)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(n)), raising=False)


@pytest.mark.parametrize("cores", [1, 2, 3, 8, 64])
def test_thread_defaults_never_exceed_the_cores(monkeypatch, cores):
    from cracksam.service.settings import ServiceSettings
    from cracksam.threads import cpu_cores, default_threads, default_workers

    _pretend_cores(monkeypatch, cores)
    assert cpu_cores() == cores and default_threads() == cores
    for workers in range(1, 9):
        assert 1 <= default_threads(workers) and workers * default_threads(workers) <= max(cores, workers)
    settings = ServiceSettings()
    assert settings.workers == default_workers() <= cores
    assert settings.workers * settings.cpu_threads <= cores
    assert ServiceSettings(workers=2, threads=5).cpu_threads == 5  # an explicit figure is kept


def test_predict_and_bench_run_with_threads_within_the_cores(monkeypatch, tiny_full, tmp_path, capsys):
    import cracksam.inference.predictor as door

    ckpt, image = tiny_full
    seen: list[int | None] = []
    original = door.open_predictor

    def spy(options, *args, **kwargs):
        seen.append(options.threads)
        return original(options, *args, **kwargs)

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(door, "open_predictor", spy)
        _pretend_cores(monkeypatch, 1)
        assert main(["predict", str(image), "-m", str(ckpt), "--out", str(tmp_path / "p"), "--no-progress"]) == 0
        assert seen == [1]
        summary = json.loads((tmp_path / "p" / "summary.json").read_text())
        assert summary["threads"] == 1
        report = tmp_path / "bench.json"
        rc = main(["bench", "-m", str(ckpt), "--backends", "torch", "--iterations", "1", "--warmup", "0",
                   "-o", str(report)])
        assert rc == 0
        assert "threads 1" in capsys.readouterr().out  # the table says which figure it used
        doc = json.loads(report.read_text())
        assert doc["threads"] == 1 and all(r["threads"] == 1 for r in doc["results"])
    finally:
        torch.set_num_threads(before)


def test_zero_threads_is_a_clear_error(tiny_full, tmp_path, capsys):
    ckpt, image = tiny_full
    for argv in (["predict", str(image), "-m", str(ckpt), "--out", str(tmp_path / "p")],
                 ["bench", "-m", str(ckpt), "--backends", "torch"]):
        assert main([*argv, "--threads", "0"]) == 2, argv[0]
        err = capsys.readouterr().err
        assert "--threads must be >= 1" in err and "Traceback" not in err, argv[0]


def test_the_bundled_model_is_every_commands_default(monkeypatch, tmp_path, capsys):
    from cracksam.models.default import default_model_path

    bundled = json.loads((default_model_path() / "config.json").read_text())["model"]["arch"]
    for argv in (["info", "--json"], ["info", "--model", "default", "--json"]):
        assert main(argv) == 0, argv
        assert json.loads(capsys.readouterr().out)["model"]["arch"] == bundled, argv
    # export and bench load the bundled model when no --model is given, and by the name "default".
    loaded = []

    def stop(path, *_args):
        loaded.append(path)
        raise ConfigError("stop here")

    monkeypatch.setattr("cracksam.cli.export._load_torch_model", stop)
    for argv in (["export", "--targets", "onnx", "--out", str(tmp_path / "e")], ["bench", "--backends", "torch"],
                 ["export", "-m", "default", "--targets", "onnx", "--out", str(tmp_path / "e")]):
        assert main(argv) == 2 and "stop here" in capsys.readouterr().err, argv
    assert loaded == [default_model_path()] * 3
    # evaluate scores the bundled model with no --model.
    data = make_dataset(tmp_path / "data", n=2, size=(64, 64))
    rc = main(["evaluate", "--test", str(data), "--test-split", "all", "--conditions", "clean", "--device", "cpu",
               "--out", str(tmp_path / "ev"), "--no-progress"])
    assert rc == 0
    assert json.loads((tmp_path / "ev" / "table.json").read_text())["rows"][0]["backbone"] == bundled


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_is_one_error_line(tiny_full, tmp_path, capsys):
    ckpt, image = tiny_full
    from .test_stream import write_video

    data = make_dataset(tmp_path / "data", n=2, size=(64, 64))
    video = write_video(tmp_path / "video.mp4", n=2)  # a real video: a missing one is refused before the model
    commands = [
        ["predict", str(image), "-m", str(ckpt), "--out", str(tmp_path / "p")],
        ["stream", str(video), "-m", str(ckpt), "--frames-dir", str(tmp_path / "f")],
        ["evaluate", "-m", str(ckpt), "--test", str(data), "--out", str(tmp_path / "ev")],
    ]
    for argv in commands:
        assert main([*argv, "--device", "cuda"]) == 2, argv[0]
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "CUDA" in lines[0], (argv[0], lines)


def test_onnx_on_a_missing_gpu_falls_back_with_one_warning_line(tiny_full, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    from cracksam.deployment.export import export_onnx
    from cracksam.models import load_model

    ckpt, image = tiny_full
    onnx = export_onnx(load_model(ckpt), tmp_path / "m.onnx")
    rc = main(["predict", str(image), "-m", str(onnx), "--device", "cuda", "--out", str(tmp_path / "p"),
               "--no-progress"])
    assert rc == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "CUDAExecutionProvider" in warning[0] and "CPUExecutionProvider" in warning[0]
    assert "UserWarning" not in err and "warnings.warn" not in err
