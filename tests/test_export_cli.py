"""``cracksam export`` (parity report, refusal) and ``cracksam bench``."""

from __future__ import annotations

import json

import cv2
import pytest
import torch

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.models import build_cracksam, save_delta

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("exp")
    from cracksam.models import CrackSAMConfig, DeltaConfig

    model = build_cracksam(CrackSAMConfig(backbone="tiny", image_size=64, delta=DeltaConfig(kind="adapter+lora")))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name or ".adapter.up." in name:
                p.normal_(0, 0.2)
    ckpt = save_delta(model, root / "model")
    # The saved base is the model's own (random) base, so load_model reproduces this model.
    base = root / "base.pth"
    torch.save({k: v for k, v in model.state_dict().items() if ".lora_" not in k and ".adapter." not in k}, base)
    data = make_dataset(root / "photos", n=6, size=(90, 120))
    return ckpt, base, data / "images"


def test_export_writes_every_target_with_a_parity_report(tiny_ckpt, tmp_path, capsys):
    ckpt, base, photos = tiny_ckpt
    out = tmp_path / "export"
    rc = main(["export", "--model", str(ckpt), "--base", str(base), "--out", str(out),
               "--targets", "onnx,openvino-fp32,openvino-fp16,openvino-int8", "--samples", str(photos),
               "--calib", str(photos), "--min-iou", "0", "--int8-max-drop", "0"])  # accuracy control: own_process
    assert rc == 0, capsys.readouterr().err
    for name in ("model.onnx", "model_fp32.xml", "model_fp32.bin", "model_fp16.xml", "model_int8.xml"):
        assert (out / name).exists(), name
    report = json.loads((out / "parity.json").read_text())
    assert "6 image(s)" in report["samples"]
    by_target = {r["target"]: r for r in report["results"]}
    assert set(by_target) == {"onnx", "openvino-fp32", "openvino-fp16", "openvino-int8"}
    for target in ("onnx", "openvino-fp32", "openvino-fp16"):
        assert by_target[target]["parity"]["mask_iou"] >= 0.99, target
        assert by_target[target]["parity"]["max_abs_prob_diff"] < 0.05
    assert 0.0 <= by_target["openvino-int8"]["parity"]["mask_iou"] <= 1.0


def test_export_refuses_and_deletes_an_export_that_disagrees(tiny_ckpt, tmp_path, monkeypatch, capsys):
    ckpt, base, photos = tiny_ckpt
    import cracksam.deployment.pipeline as pipeline

    real = pipeline.parity_report

    def worse(reference, candidate, images, **kw):
        report = real(reference, candidate, images, **kw)
        return {**report, "mask_iou": 0.5} if candidate.precision == "fp16" else report

    monkeypatch.setattr(pipeline, "parity_report", worse)
    out = tmp_path / "export"
    rc = main(["export", "--model", str(ckpt), "--base", str(base), "--out", str(out),
               "--targets", "onnx,openvino-fp16", "--samples", str(photos)])
    assert rc == 1
    assert "REFUSED" in capsys.readouterr().out
    assert (out / "model.onnx").exists() and not (out / "model_fp16.xml").exists()
    assert not (out / "model_fp16.bin").exists()


def test_export_adds_targets_without_touching_other_files(tiny_ckpt, tmp_path, capsys):
    """A second export into the same folder adds its files: the first export's model.onnx (and any
    user file) stays as it was."""
    ckpt, base, photos = tiny_ckpt
    out = tmp_path / "export"
    common = ["export", "--model", str(ckpt), "--base", str(base), "--out", str(out), "--samples", str(photos)]
    assert main([*common, "--targets", "onnx"]) == 0, capsys.readouterr().err
    first = (out / "model.onnx").read_bytes()
    (out / "notes.txt").write_text("mine")
    assert main([*common, "--targets", "openvino-fp16"]) == 0, capsys.readouterr().err
    assert (out / "model.onnx").read_bytes() == first
    assert (out / "notes.txt").read_text() == "mine" and (out / "model_fp16.xml").is_file()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no scratch folder left


def test_export_and_bench_reject_bad_options(tiny_ckpt, tmp_path, capsys):
    ckpt, base, photos = tiny_ckpt
    common = ["--model", str(ckpt), "--base", str(base), "--out", str(tmp_path / "e")]
    for argv, needle in [
        (["export", *common, "--targets", "tensorrt"], "unknown export target"),
        (["export", *common, "--targets", "openvino-int8"], "--calib"),
        (["export", *common, "--opset", "11"], "opset"),
        (["export", *common, "--samples", str(tmp_path / "none")], "not found"),
    ]:
        assert main(argv) == 2, argv
        assert needle in capsys.readouterr().err
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    assert main(["bench", "--model", str(broken)]) == 2
    assert "broken.onnx" in capsys.readouterr().err


def test_bench_times_each_backend(tiny_ckpt, tmp_path, capsys):
    ckpt, base, photos = tiny_ckpt
    out = tmp_path / "bench.json"
    rc = main(["bench", "--model", str(ckpt), "--base", str(base), "--backends", "torch,onnx,openvino-fp16",
               "--iterations", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--samples", str(photos),
               "--export-dir", str(tmp_path / "ex"), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    rows = {r["backend"]: r for r in doc["results"]}
    assert set(rows) == {"torch", "onnx", "openvino-fp16"}
    assert rows["torch"]["speedup_vs_torch"] == pytest.approx(1.0)
    for r in rows.values():
        assert r["images_per_s"] > 0 and r["batch"] == 2 and r["latency_ms_p90"] >= r["latency_ms_min"]
    assert rows["onnx"]["parity_mask_iou"] >= 0.99
    # a fp32 export agrees within the 2-px tolerance too; PyTorch itself is the reference and has no figure
    assert rows["onnx"]["parity_mask_f1_2px"] >= 0.99 and rows["torch"]["parity_mask_f1_2px"] is None
    # An exported file can be timed on its own too, and is named as the export target it is
    # (one vocabulary: "onnx", not "onnxruntime-fp32"); --json prints to stdout as everywhere.
    capsys.readouterr()
    assert main(["bench", "--model", str(tmp_path / "ex" / "model" / "model.onnx"), "--iterations", "2",
                 "--json"]) == 0
    assert [r["backend"] for r in json.loads(capsys.readouterr().out)["results"]] == ["onnx"]


def test_predict_gives_the_same_mask_with_every_runtime(tiny_ckpt, tmp_path):
    ckpt, base, photos = tiny_ckpt
    out = tmp_path / "export"
    assert main(["export", "--model", str(ckpt), "--base", str(base), "--out", str(out),
                 "--targets", "onnx,openvino-fp32", "--samples", str(photos)]) == 0
    masks = {}
    for name, model in [("torch", ckpt), ("onnx", out / "model.onnx"), ("ov", out / "model_fp32.xml")]:
        extra = ["--base", str(base)] if name == "torch" else []
        assert main(["predict", str(photos), "--model", str(model), "--out", str(tmp_path / name), *extra,
                     "--no-progress"]) == 0
        masks[name] = {p.name: cv2.imread(str(p), 0) for p in sorted((tmp_path / name).glob("*_mask.png"))}
    assert masks["torch"].keys() == masks["onnx"].keys() == masks["ov"].keys() and len(masks["torch"]) == 6
    for key, ref in masks["torch"].items():
        for other in ("onnx", "ov"):
            diff = (ref != masks[other][key]).mean()
            assert diff < 0.001, (other, key, diff)


def test_bench_names_a_refused_export_with_both_agreements_and_does_not_time_it(tiny_ckpt, tmp_path, capsys):
    ckpt, base, photos = tiny_ckpt
    out = tmp_path / "bench.json"
    rc = main(["bench", "--model", str(ckpt), "--base", str(base), "--backends", "torch,onnx", "--iterations", "2",
               "--warmup", "1", "--threads", "1", "--samples", str(photos), "--min-iou", "1.01",
               "--export-dir", str(tmp_path / "ex"), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "onnx: parity IoU 1.0000 < 1.01, refused and deleted (F1 with 2-px tolerance 1.0000)" in err
    assert [r["backend"] for r in json.loads(out.read_text())["results"]] == ["torch"]
    assert not (tmp_path / "ex" / ckpt.name / "model.onnx").exists()


@pytest.mark.parametrize("name", ["", "Intel(R) Xeon(R)"])
def test_bench_title_has_no_trailing_separator(monkeypatch, name):
    from cracksam.cli import bench

    monkeypatch.setattr(bench.platform, "processor", lambda: name)
    title = bench._machine(2)
    assert title == "threads 2" + (f", {name}" if name else "") and not title.endswith((",", ", "))
