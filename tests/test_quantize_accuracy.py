"""Mixed-precision INT8 by NNCF accuracy control: layers go back to float until the masks agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")
pytest.importorskip("nncf")

# NNCF's accuracy control imports nncf.torch; a training run later in the same process crashed (pyproject).
pytestmark = pytest.mark.own_process

from cracksam.cli.main import main  # noqa: E402
from cracksam.data.synthetic import synthetic_pair  # noqa: E402
from cracksam.deployment import export_onnx  # noqa: E402
from cracksam.deployment.pipeline import export_all  # noqa: E402
from cracksam.deployment.quantize import quantize_int8  # noqa: E402
from cracksam.deployment.quantize_accuracy import (  # noqa: E402
    F32,
    crack_mask,
    float_layers,
    mask_iou,
    quantize_int8_accuracy,
)
from cracksam.errors import CrackSAMError  # noqa: E402
from tests._convnet import RawDarkConvNet  # noqa: E402

SIZE = 64


def _images(n: int, seed: int) -> np.ndarray:
    return np.stack([synthetic_pair((SIZE, SIZE), seed=seed + i)[0] for i in range(n)]).transpose(0, 3, 1, 2).astype(
        np.float32)


def _masks(path, images: np.ndarray) -> list[np.ndarray]:
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", F32)
    return [crack_mask(next(iter(compiled(x[None]).values()))) for x in images]


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("acc") / "model.onnx"
    export_onnx(RawDarkConvNet(SIZE).eval(), path)
    return path


def test_crack_mask_is_the_crack_logit_at_least_the_background_one():
    logits = np.array([[[[0.0, 1.0, 2.0]], [[1.0, 1.0, 1.0]]]])  # (1, 2, 1, 3)
    assert crack_mask(logits).tolist() == [[[True, True, False]]]


def test_mask_iou_is_pooled_over_images_and_one_when_both_are_empty():
    a = [np.array([True, True, False]), np.array([False, False, False])]
    b = [np.array([True, False, False]), np.array([False, True, True])]
    assert mask_iou(a, b) == pytest.approx(1 / 4)  # 1 shared of 4 crack pixels in either, over both images
    assert mask_iou([np.zeros(3, bool)], [np.zeros(3, bool)]) == 1.0


def test_layers_that_move_the_mask_go_back_to_float_until_the_masks_agree(onnx_model, tmp_path):
    """Every layer INT8 (plain NNCF) agrees with float at 0.993 mask IoU on these images; asked for a
    drop of at most 0.005, accuracy control returns a layer to float and reaches the bound, and the
    file says which layers are float and what it reached."""
    images, max_drop = _images(8, 100), 0.005
    reference = _masks(onnx_model, images)
    plain = quantize_int8(onnx_model, tmp_path / "plain.xml", images, model_type=None)
    assert mask_iou(_masks(plain, images), reference) < 1 - max_drop  # so the bound asks for something
    assert float_layers(ov.Core().read_model(str(plain))) == []

    path = quantize_int8_accuracy(onnx_model, tmp_path / "mixed.xml", images, max_drop=max_drop)
    reached = mask_iou(_masks(path, images), reference)
    assert reached >= 1 - max_drop
    model = ov.Core().read_model(str(path))
    record = json.loads(str(model.get_rt_info(["cracksam", "quantization"]).astype(str)))
    kept = float_layers(model)
    assert kept and len(kept) < 3 and record["float_layers"] == kept  # some layers, not all three
    assert record["method"] == "accuracy control" and record["max_drop"] == max_drop
    assert record["reached"] == pytest.approx(reached, abs=1e-4)
    assert str(model.get_rt_info(["cracksam", "precision"]).astype(str)) == "int8"


@pytest.mark.parametrize("max_drop", [0.0, 1.0, -0.1])
def test_a_drop_outside_zero_one_is_refused(onnx_model, tmp_path, max_drop):
    with pytest.raises(CrackSAMError, match="drop must be in"):
        quantize_int8_accuracy(onnx_model, tmp_path / "m.xml", _images(2, 0), max_drop=max_drop)
    assert not list(tmp_path.iterdir())


def test_calibration_images_of_the_wrong_shape_are_refused(onnx_model, tmp_path):
    with pytest.raises(CrackSAMError, match=r"\(N, 3, S, S\)"):
        quantize_int8_accuracy(onnx_model, tmp_path / "m.xml", np.zeros((2, SIZE, SIZE), np.float32))


def test_export_uses_accuracy_control_only_when_a_drop_is_given(tmp_path):
    net = RawDarkConvNet(SIZE).eval()
    from cracksam.inference.backends import OpenVINOBackend

    methods = {}
    for drop in (0.0, 0.005):
        run = export_all(net, tmp_path / str(drop), ["openvino-int8"], _images(4, 0), _images(8, 100), threads=1,
                         int8_max_drop=drop)
        (result,) = run.results
        methods[drop] = json.loads(OpenVINOBackend(result.path, threads=1).metadata["quantization"]).get("method")
    assert methods == {0.0: None, 0.005: "accuracy control"}


def test_export_refuses_a_drop_outside_its_range(tmp_path, capsys):
    code = main(["export", "--targets", "openvino-int8", "--calib", str(tmp_path), "--int8-max-drop", "1.5",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--int8-max-drop must be in [0, 1)" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
