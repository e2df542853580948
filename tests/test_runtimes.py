"""The runtime levers: ONNX Runtime INT8 (dynamic, static QDQ), fused ONNX, torch.compile,
dynamic-shape exports, OpenVINO hints, and throughput mode (several requests in flight)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cracksam.cli.main import main  # noqa: E402
from cracksam.data.synthetic import synthetic_pair  # noqa: E402
from cracksam.deployment import MIN_IOU, export_onnx  # noqa: E402
from cracksam.deployment.pipeline import TARGET_FILES, export_all, load_network_tiles  # noqa: E402
from cracksam.errors import ConfigError, CrackSAMError  # noqa: E402
from cracksam.inference.backends import OnnxRuntimeBackend, TorchBackend  # noqa: E402
from cracksam.inference.inflight import run_many  # noqa: E402
from cracksam.inference.predictor import Predictor  # noqa: E402
from tests._convnet import RawDarkConvNet  # noqa: E402

SIZE = 64


@pytest.fixture(autouse=True, scope="module")
def _no_leaked_arch():
    """Two tests here build test_runtime_cache's toy network, which registers itself; unregister it
    after this module so the zoo and registry tests see only the package's networks."""
    yield
    from cracksam.models.registry import unregister_model
    from tests.test_runtime_cache import ARCH

    unregister_model(ARCH)


def _images(n: int, seed: int, size: int = SIZE) -> np.ndarray:
    return np.stack([synthetic_pair((size, size), seed=seed + i)[0] for i in range(n)]).transpose(0, 3, 1, 2).astype(
        np.float32)


@pytest.fixture(scope="module")
def net():
    return RawDarkConvNet(SIZE).eval()


def test_each_new_onnx_target_round_trips_with_the_masks(net, tmp_path):
    """Fused ONNX keeps fp32 parity; dynamic and static INT8 stay above the INT8 floor (measured
    0.997 / 0.998) with the first and last convolution kept in float, as their records say."""
    targets = ["onnx-fused", "onnx-int8", "onnx-int8-static"]
    run = export_all(net, tmp_path, targets, _images(8, 0), _images(8, 100), threads=1)
    results = {r.target: r for r in run.results}
    assert set(results) == set(targets) and not run.failed
    assert results["onnx-fused"].parity["mask_iou"] >= MIN_IOU["fp32"] == 0.99
    for name in ("onnx-int8", "onnx-int8-static"):
        r = results[name]
        assert r.parity["mask_iou"] >= MIN_IOU["int8"] == 0.97, name
        backend = OnnxRuntimeBackend(r.path, threads=1)
        assert backend.precision == "int8" and r.path.name == TARGET_FILES[name]
        record = json.loads(backend.metadata["quantization"])
        assert record["per_channel"] and record["float_layers"] == ["/net/c1/Conv", "/net/c3/Conv"], record
        ops = {n.op_type for n in __import__("onnx").load(str(r.path)).graph.node}
        assert ops & {"QuantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "QLinearConv"}, ops  # really INT8
    assert not (tmp_path / "model.onnx").exists()  # the fp32 graph was only a step


def test_int8_below_its_tolerance_is_refused_and_deleted(net, tmp_path, capsys):
    """Calibration on blank white images (activation ranges of 0 after the first ReLU) destroys the
    static INT8 model; the export is refused and its file deleted, and `cracksam export` exits 1."""
    white = np.full((4, 3, SIZE, SIZE), 255, np.float32)
    run = export_all(net, tmp_path, ["onnx-int8-static"], _images(8, 0), white, threads=1)
    (result,) = run.results
    assert not result.passed and result.parity["mask_iou"] < MIN_IOU["int8"]
    assert not result.path.exists() and not list(tmp_path.glob("*.onnx"))


def test_openvino_int8_of_a_cnn_is_quantised_as_a_cnn(net, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    run = export_all(net, tmp_path, ["openvino-int8"], _images(8, 0), _images(8, 100), threads=1)
    (result,) = run.results
    assert result.passed and result.parity["mask_iou"] >= MIN_IOU["int8"]
    from cracksam.inference.backends import OpenVINOBackend

    record = json.loads(OpenVINOBackend(result.path, threads=1).metadata["quantization"])
    assert record["model_type"] is None  # NNCF's transformer preset is for the ViT only


@pytest.mark.slow
def test_torch_compile_round_trips(net):
    pytest.importorskip("torch._inductor")
    from cracksam.deployment.export import parity_report
    from cracksam.inference.compiled import CompiledTorchBackend

    eager = TorchBackend(net, threads=1)
    compiled = CompiledTorchBackend(net, threads=1, channels_last=True)
    report = parity_report(eager, compiled, _images(4, 0))
    assert report["mask_iou"] >= MIN_IOU["fp32"] and report["max_abs_logit_diff"] < 1e-3


def test_dynamic_shape_export_predicts_whole_images_like_pytorch(tmp_path):
    """A fully convolutional SegModel exported with dynamic height and width: ONNX Runtime takes
    the whole (non-square) image as PyTorch does instead of S×S windows."""
    from tests.test_runtime_cache import conv_segmodel

    model = conv_segmodel()
    backend = OnnxRuntimeBackend(export_onnx(model, tmp_path / "m.onnx", dynamic_shape=True), threads=1)
    assert backend.dynamic and backend.multiple == 8
    image = synthetic_pair((120, 200), seed=3)[0]
    ours, ref = Predictor(backend), Predictor(TorchBackend(model))
    assert ours.mode == ref.mode == "native" and ours.dynamic
    assert np.abs(ours.predict_one(image).prob - ref.predict_one(image).prob).max() < 1e-4
    with pytest.raises(ValueError, match="multiples of 8"):
        backend.run(np.zeros((1, 3, 60, 64), np.float32))
    fixed = OnnxRuntimeBackend(export_onnx(model, tmp_path / "f.onnx"), threads=1)
    assert not fixed.dynamic  # the default stays a fixed S×S graph


def _backends(net, tmp_path):
    path = export_onnx(net, tmp_path / "m.onnx")
    out = [TorchBackend(net, threads=1), OnnxRuntimeBackend(path, threads=1)]
    try:
        from cracksam.deployment.export import export_openvino
        from cracksam.inference.backends import OpenVINOBackend

        xml = export_openvino(path, tmp_path / "m.xml", fp16=False)
        out.append(OpenVINOBackend(xml, threads=1, hint="THROUGHPUT", streams=2))
    except Exception:  # openvino not installed
        pass
    return out


def test_throughput_mode_returns_the_masks_of_latency_mode(net, tmp_path):
    """Tiles of a large photo with 3 batches in flight (OpenVINO async requests, ONNX Runtime and
    PyTorch threads) give exactly the logits of one batch at a time."""
    import cv2

    image = synthetic_pair((300, 410), seed=7)[0]
    cv2.line(image, (0, 40), (409, 260), (30, 30, 30), 3)  # a crack across window borders
    for backend in _backends(net, tmp_path):
        latency = Predictor(backend, mode="tile", batch_size=2)
        through = Predictor(backend, mode="tile", batch_size=2, in_flight=3)
        a, b = latency.logits([image])[0], through.logits([image])[0]
        assert np.array_equal(a, b), backend.name
        assert latency.predict_one(image).mask().sum() > 0
        batches = [_images(2, 10 * i) for i in range(5)]
        many = run_many(backend, batches, in_flight=3)
        assert all(np.array_equal(m, backend.run(x)) for m, x in zip(many, batches, strict=True)), backend.name


def test_throughput_options_are_validated(net):
    with pytest.raises(ConfigError, match="in flight"):
        Predictor(TorchBackend(net), in_flight=0)
    pytest.importorskip("openvino")
    from cracksam.inference.backends import OpenVINOBackend

    with pytest.raises(ConfigError, match="performance hint"):
        OpenVINOBackend("/nonexistent.xml", hint="FAST")


def test_calibration_tiles_are_taken_at_native_scale(tmp_path):
    import cv2

    photo = synthetic_pair((150, 200), seed=1)[0]
    cv2.imwrite(str(tmp_path / "p.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    tiles, where = load_network_tiles([tmp_path], 64, scale=1.0, limit=100)
    assert tiles.shape == (12, 3, 64, 64) and "scale 1" in where  # 3 x 4 windows, nothing shrunk
    assert np.array_equal(tiles[0].transpose(1, 2, 0), photo[:64, :64])
    half, _ = load_network_tiles([tmp_path], 64, scale=0.5, limit=100)
    assert half.shape[0] == 4


def test_bench_reports_latency_and_throughput_of_the_new_targets(tmp_path, capsys):
    from tests.test_runtime_cache import conv_checkpoint

    ckpt = conv_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "bench.json"
    rc = main(["bench", "-m", str(ckpt), "--backends", "torch,onnx,onnx-int8", "--iterations", "2", "--warmup", "0",
               "--threads", "1", "--in-flight", "2", "--export-dir", str(tmp_path / "ex"), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "threads 1" in capsys.readouterr().out  # the table (its columns wrap at the test's width)
    rows = {r["backend"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"torch", "onnx", "onnx-int8"}
    for r in rows.values():
        assert r["throughput_images_per_s"] > 0 and r["in_flight"] == 2 and r["latency_ms_p90"] >= r["latency_ms_min"]
    assert rows["onnx-int8"]["parity_mask_iou"] >= MIN_IOU["int8"] and rows["onnx-int8"]["precision"] == "int8"
    assert main(["bench", "-m", str(ckpt), "--backends", "torch,tensorrt"]) == 2
    assert "unknown backend" in capsys.readouterr().err
    assert main(["bench", "-m", str(ckpt), "--backends", "onnx-int8-static"]) == 2
    assert "--calib" in capsys.readouterr().err


@pytest.mark.slow
def test_fused_onnx_of_a_vit_keeps_the_logits(tiny_config, tmp_path):
    """ONNX Runtime's transformer fusions on a (tiny) CrackSAM: the same logits as the plain export
    (its LayerNorm fusion, which mis-fuses SAM's channel LayerNorm2d -- logits off by 0.06 -- is off)."""
    from cracksam.deployment.export import parity_report
    from cracksam.deployment.quantize import fuse_onnx
    from cracksam.models import build_cracksam

    model = build_cracksam(tiny_config("lora")).eval()
    fused = OnnxRuntimeBackend(fuse_onnx(export_onnx(model, tmp_path / "m.onnx"), tmp_path / "f.onnx"), threads=1)
    assert json.loads(fused.metadata["config"])["backbone"] == "tiny" and "transformers" in fused.metadata["fusion"]
    report = parity_report(TorchBackend(model, threads=1), fused, _images(3, 0))
    assert report["max_abs_logit_diff"] < 1e-4 and report["logit_cosine"] > 0.9999


def test_onnx_outputs_must_be_named_onnx(net, tmp_path):
    """Export and every quantised / fused copy share one suffix check (backends open files by it)."""
    from cracksam.deployment.quantize import fuse_onnx, quantize_onnx_dynamic, quantize_onnx_static

    with pytest.raises(CrackSAMError, match=r"model\.pt: an ONNX model must be named \*\.onnx"):
        export_onnx(net, tmp_path / "model.pt")
    src = export_onnx(net, tmp_path / "model.onnx")
    for make in (quantize_onnx_dynamic, fuse_onnx):
        with pytest.raises(CrackSAMError, match=r"out\.bin: an ONNX model must be named"):
            make(src, tmp_path / "out.bin")
    with pytest.raises(CrackSAMError, match=r"out\.bin: an ONNX model must be named"):
        quantize_onnx_static(src, tmp_path / "out.bin", _images(2, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # nothing half-written


def test_dynamic_int8_of_cracksam_keeps_the_decoder_and_attention_projections_float(tmp_path):
    """In a CrackSAM graph the mask decoder, the neck and each block's attention output projection
    stay float (the most accuracy for the least speed, measured on ViT-B); the encoder blocks' qkv
    and MLP run INT8.  Mutant: the SAM rule dropped (first and last layer only) -> the decoder's
    MatMuls and the neck turn INT8; names taken from the export instead of the pre-processed graph
    -> the decoder's hypernetwork Gemms (split into MatMul + Add there) turn INT8."""
    import onnx

    from cracksam.deployment.quantize import quantize_onnx_dynamic
    from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam

    net = build_cracksam(CrackSAMConfig(backbone="tiny", image_size=SIZE, delta=DeltaConfig(kind="lora"))).eval()
    fp32 = export_onnx(net, tmp_path / "model.onnx")
    out = quantize_onnx_dynamic(fp32, tmp_path / "model-int8.onnx")
    record = json.loads(OnnxRuntimeBackend(out, threads=1).metadata["quantization"])
    kept = record["float_layers"]
    assert any("/attn/proj/" in k for k in kept) and any(k.startswith("/transformer/") for k in kept), kept
    assert not any("/attn/qkv/" in k or "/mlp/lin" in k for k in kept if k.startswith("/image_encoder/blocks.")), kept
    nodes = onnx.load(str(out)).graph.node
    integer = {n.name for n in nodes if n.op_type == "MatMulInteger"}
    assert any("/attn/qkv/" in n for n in integer) and any("/mlp/lin1/" in n for n in integer), sorted(integer)
    assert not any("/attn/proj/" in n or n.startswith(("/transformer/", "/output_")) for n in integer), sorted(integer)
    assert not any(n.op_type == "ConvInteger" for n in nodes)  # the neck's convolutions stay float
    x = _images(2, 0)
    ref, got = (OnnxRuntimeBackend(p, threads=1).run(x) for p in (fp32, out))
    cos = float((ref * got).sum() / np.linalg.norm(ref) / np.linalg.norm(got))
    assert cos > 0.95, cos  # a working INT8 graph of a random tiny model (0.98 measured)
