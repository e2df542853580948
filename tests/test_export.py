"""Deployment: ONNX / OpenVINO (FP32, FP16, INT8) export of a tiny CrackSAM, the runtime backends
and the parity check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

import onnx  # noqa: E402

from cracksam.deployment import (  # noqa: E402
    MIN_IOU,
    check_parity,
    export_onnx,
    export_openvino,
    parity_report,
    quantize_int8,
)
from cracksam.errors import CheckpointError, CrackSAMError  # noqa: E402
from cracksam.inference.backends import (  # noqa: E402
    Backend,
    OnnxRuntimeBackend,
    OpenVINOBackend,
    TorchBackend,
    open_backend,
)
from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam  # noqa: E402
from cracksam.models.deltas import has_lora  # noqa: E402

SIZE = 64
REPORT_KEYS = {"max_abs_prob_diff", "mask_iou", "n_images"}


def _images(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 3, SIZE, SIZE)) * 255).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_cracksam(CrackSAMConfig(backbone="tiny", image_size=SIZE, delta=DeltaConfig(kind="adapter+lora")))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "lora_B" in name or "adapter.up" in name:  # both start at zero: make the deltas matter
                p.normal_(0.0, 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def onnx_path(model, out_dir):
    return export_onnx(model, out_dir / "tiny.onnx")


@pytest.fixture(scope="module")
def ir_fp32(onnx_path, out_dir):
    return export_openvino(onnx_path, out_dir / "tiny_fp32.xml", fp16=False)


@pytest.fixture(scope="module")
def ir_fp16(onnx_path, out_dir):
    return export_openvino(onnx_path, out_dir / "tiny_fp16.xml")


@pytest.fixture(scope="module")
def torch_backend(model):
    return TorchBackend(model)


# -- ONNX ------------------------------------------------------------------------------------------


def test_onnx_matches_torch_for_batch_1_and_3(model, onnx_path):
    backend = open_backend(onnx_path)
    assert isinstance(backend, OnnxRuntimeBackend) and isinstance(backend, Backend)
    assert (backend.name, backend.precision, backend.image_size) == ("onnxruntime", "fp32", SIZE)
    for batch in (1, 3):
        x = _images(batch, seed=batch)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        out = backend.run(x)
        assert out.shape == (batch, 2, SIZE, SIZE) and out.dtype == np.float32
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_onnx_graph_has_lora_merged_and_full_size_output(model, onnx_path):
    graph = onnx.load(str(onnx_path)).graph
    names = [init.name for init in graph.initializer]
    assert names and not [n for n in names if "lora" in n.lower()]
    assert any("adapter" in n for n in names)  # adapters stay as modules
    # The exported copy was merged, the caller's model still has its LoRA factors.
    assert has_lora(model)
    assert model.image_encoder.blocks[0].attn.qkv.lora_B["q"].abs().sum() > 0

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [i.name for i in graph.input] == ["images"] and [o.name for o in graph.output] == ["logits"]
    assert dims(graph.input[0]) == ["batch", 3, SIZE, SIZE]
    assert dims(graph.output[0]) == ["batch", 2, SIZE, SIZE]  # upsampling to S x S is in the graph
    assert "Resize" in {node.op_type for node in graph.node}


def test_onnx_export_writes_only_the_target(model, tmp_path):
    path = export_onnx(model, tmp_path / "sub" / "m.onnx", verify=False)
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.onnx"]
    onnx.checker.check_model(str(path))
    with pytest.raises(CrackSAMError, match="onnx"):
        export_onnx(model, tmp_path / "m.pt")


def test_metadata_round_trips(model, onnx_path, ir_fp32, ir_fp16):
    for path, runtime, precision in ((onnx_path, "onnxruntime", "fp32"), (ir_fp32, "openvino", "fp32"),
                                     (ir_fp16, "openvino", "fp16")):
        backend = open_backend(path)
        assert (backend.name, backend.precision, backend.image_size) == (runtime, precision, SIZE)
        assert backend.model_config == model.config
        assert backend.metadata["image_size"] == str(SIZE)
        assert backend.metadata["version"]
        assert backend.metadata["lora_merged"] == "true"


# -- OpenVINO --------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["fp32", "fp16"])
def test_openvino_masks_match_torch(which, torch_backend, ir_fp32, ir_fp16):
    backend = open_backend(ir_fp32 if which == "fp32" else ir_fp16, threads=1)
    assert isinstance(backend, OpenVINOBackend)
    assert backend.run(_images(3, seed=5)).shape == (3, 2, SIZE, SIZE)  # dynamic batch
    report = parity_report(torch_backend, backend, _images(6, seed=7))
    assert 0.05 < report["crack_fraction"] < 0.95  # both classes are predicted: the IoU means something
    assert report["mask_iou"] >= MIN_IOU[which]
    assert report["max_abs_prob_diff"] < (1e-4 if which == "fp32" else 1e-2)
    check_parity(report)


def test_int8_quantisation(torch_backend, ir_fp32, out_dir):
    calibration = list(_images(16, seed=11))  # a sequence of (3, S, S) images
    path = quantize_int8(ir_fp32, out_dir / "tiny_int8.xml", calibration, subset_size=16)
    assert path.is_file() and path.with_suffix(".bin").is_file()
    backend = open_backend(path)
    assert (backend.name, backend.precision, backend.image_size) == ("openvino", "int8", SIZE)
    assert "nncf" in backend.metadata["quantization"]
    assert backend.model_config == torch_backend.model_config
    report = parity_report(torch_backend, backend, _images(4, seed=13), threshold=0.5)
    assert REPORT_KEYS <= set(report)
    assert report["n_images"] == 4
    # A random network has no margins to keep: its INT8 accuracy floor is tested on a trained
    # one in test_int8.py; here only the report's form.
    assert 0.0 <= report["mask_iou"] <= 1.0
    assert 0.0 <= report["max_abs_prob_diff"] <= 1.0


def test_quantize_rejects_empty_or_wrong_calibration(onnx_path, tmp_path):
    with pytest.raises(CrackSAMError, match="calibration set is empty"):
        quantize_int8(onnx_path, tmp_path / "q.xml", [])
    with pytest.raises(CrackSAMError, match="calibration image 0"):
        quantize_int8(onnx_path, tmp_path / "q.xml", np.zeros((2, 3, 32, 32), np.float32))
    assert not list(tmp_path.iterdir())


# -- parity ----------------------------------------------------------------------------------------


class _Fixed:
    """A backend returning given logits."""

    def __init__(self, logits: np.ndarray, precision: str = "fp32") -> None:
        self.logits, self.precision, self.name, self.image_size = logits, precision, "fixed", logits.shape[-1]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.logits[: len(x)]


def _logits(mask: np.ndarray) -> np.ndarray:
    """(N, S, S) bool crack mask -> logits with crack probability 0.88 / 0.12."""
    crack = np.where(mask, 1.0, -1.0).astype(np.float32)
    return np.stack([-crack, crack], axis=1)


def test_parity_iou_is_pooled_and_one_when_both_empty():
    size = 4
    a, b = np.zeros((2, size, size), bool), np.zeros((2, size, size), bool)
    a[0, 0, :] = True  # 4 pixels
    b[0, 0, :2] = True  # 2 of them
    b[1, 1, :2] = True  # and 2 elsewhere
    images = np.zeros((2, 3, size, size), np.float32)
    report = parity_report(_Fixed(_logits(a)), _Fixed(_logits(b), "int8"), images)
    assert report["mask_iou"] == pytest.approx(2 / 6)
    assert report["max_abs_prob_diff"] == pytest.approx(np.tanh(1.0), abs=1e-6)  # sigmoid(2) - sigmoid(-2)
    assert report["n_images"] == 2
    empty = _Fixed(_logits(np.zeros((2, size, size), bool)))
    assert parity_report(empty, empty, images)["mask_iou"] == 1.0

    with pytest.raises(CrackSAMError, match=r"0\.3333 < 0\.9700"):
        check_parity(report)  # int8 default threshold
    with pytest.raises(CrackSAMError, match="mask IoU"):
        check_parity({**report, "mask_iou": 0.98}, min_iou=0.99)
    check_parity({**report, "mask_iou": 0.98}, min_iou=0.97)
    with pytest.raises(CrackSAMError, match="non-empty"):
        parity_report(empty, empty, np.zeros((0, 3, size, size), np.float32))


def test_parity_tolerance_f1_forgives_a_boundary_moved_by_two_pixels_not_three():
    """A 1-px crack drawn 2 px off has strict IoU 0 but matches within the field's 2-px tolerance;
    3 px off it matches nothing; pooled over images, half right gives F1 0.5."""
    size = 16
    ref = np.zeros((2, size, size), bool)
    ref[:, 8, 2:14] = True
    near, far = np.zeros_like(ref), np.zeros_like(ref)
    near[:, 10, 2:14] = True
    far[:, 11, 2:14] = True
    images = np.zeros((2, 3, size, size), np.float32)
    close = parity_report(_Fixed(_logits(ref)), _Fixed(_logits(near)), images)
    assert close["mask_iou"] == 0.0
    assert close["mask_f1_2px"] == pytest.approx(1.0)
    assert parity_report(_Fixed(_logits(ref)), _Fixed(_logits(far)), images)["mask_f1_2px"] == 0.0
    half = np.stack([near[0], far[1]])  # image 0 within tolerance, image 1 beyond it
    assert parity_report(_Fixed(_logits(ref)), _Fixed(_logits(half)), images)["mask_f1_2px"] == pytest.approx(0.5)
    empty = _Fixed(_logits(np.zeros_like(ref)))
    assert parity_report(empty, empty, images)["mask_f1_2px"] == 1.0


# -- opening files ---------------------------------------------------------------------------------


def test_bad_model_files_raise_checkpoint_error(onnx_path, ir_fp32, tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_path.read_bytes()[: onnx_path.stat().st_size // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    lonely = tmp_path / "lonely.xml"
    lonely.write_bytes(ir_fp32.read_bytes())
    bad_bin = tmp_path / "badbin.xml"
    bad_bin.write_bytes(ir_fp32.read_bytes())
    bad_bin.with_suffix(".bin").write_bytes(ir_fp32.with_suffix(".bin").read_bytes()[:100])
    for path in (truncated, garbage, lonely, bad_bin, tmp_path / "missing.onnx", tmp_path / "missing.xml"):
        with pytest.raises(CheckpointError, match=path.name):
            open_backend(path)
    with pytest.raises(CheckpointError, match=r"lonely\.bin"):
        open_backend(lonely)
    unknown = tmp_path / "model.pt"
    unknown.write_bytes(b"x")
    with pytest.raises(CrackSAMError, match=r"model\.pt.*unknown model file type"):
        open_backend(unknown)
    with pytest.raises(CheckpointError, match="folder"):
        open_backend(tmp_path)
    with pytest.raises(CheckpointError, match="truncated"):
        export_openvino(truncated, tmp_path / "x.xml")


def test_open_backend_dispatch(model, torch_backend):
    backend = open_backend(model)
    assert isinstance(backend, TorchBackend) and isinstance(backend, Backend)
    assert (backend.name, backend.precision, backend.image_size) == ("torch", "fp32", SIZE)
    assert open_backend(torch_backend) is torch_backend
    with pytest.raises(ValueError, match="expected images"):
        backend.run(np.zeros((1, 3, 32, 32), np.float32))


# -- slow: the other exporter ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("dynamic_batch", [True, False])
def test_dynamo_exporter(model, tmp_path, dynamic_batch):
    pytest.importorskip("onnxscript")
    path = export_onnx(model, tmp_path / "d.onnx", exporter="dynamo", dynamic_batch=dynamic_batch)
    backend = open_backend(path)
    assert "dynamo" in backend.metadata["exporter"]
    batches = (1, 3) if dynamic_batch else (1,)
    for batch in batches:
        x = _images(batch, seed=batch)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(backend.run(x), ref, atol=1e-4, rtol=0)
