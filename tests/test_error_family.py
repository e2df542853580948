"""User-input failures raise the CrackSAMError family (printed as one ``error:`` line by the CLI),
and a missing model file says "not found" even where its runtime is not installed."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from cracksam.errors import CheckpointError, ConfigError, CrackSAMError, InvalidValueError


def test_invalid_value_is_a_config_error_and_still_a_value_error():
    assert issubclass(InvalidValueError, ConfigError) and issubclass(InvalidValueError, CrackSAMError)
    assert issubclass(InvalidValueError, ValueError)  # callers that caught ValueError keep working


@pytest.mark.parametrize(
    "where, args, kwargs, needle",
    [
        ("cracksam.data.splits:_check_ratios", [(0.5, 0.5)], {}, "three numbers"),
        ("cracksam.data.splits:_check_ratios", [(0.9, 0.9, 0.1)], {}, "sum to 1"),
        ("cracksam.data.corruptions:get_corruption", ["fog"], {}, "unknown corruption"),
        ("cracksam.data.transforms:build_transform", [0], {"augment": False}, "image_size"),
        ("cracksam.evaluation.metrics:BinaryMetrics", [], {"threshold": 2}, "threshold"),
        ("cracksam.evaluation.thin_metrics:sweep_thresholds", [[0.5, 0.2]], {}, "strictly increasing"),
        ("cracksam.evaluation.thin_metrics:disk_footprint", [-1], {}, "tolerance"),
        ("cracksam.training.losses:CrackLoss", [], {"ce_weight": 3}, "ce_weight"),
    ],
)
def test_user_values_out_of_range_raise_the_family(where, args, kwargs, needle):
    module, name = where.split(":")
    with pytest.raises(InvalidValueError, match=needle):
        getattr(importlib.import_module(module), name)(*args, **kwargs)


def test_unknown_survey_engine_is_a_config_error():
    from cracksam.survey.engine import run_survey

    with pytest.raises(InvalidValueError, match="unknown engine 'warp'"):
        run_survey(None, engine="warp")  # type: ignore[arg-type]


def _without(monkeypatch, *modules: str) -> None:
    """Make ``import <module>`` fail as it does where the package is not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_onnx_file_says_not_found_without_onnxruntime(tmp_path, monkeypatch):
    from cracksam.inference.backends import OnnxRuntimeBackend, read_onnx_metadata

    _without(monkeypatch, "onnxruntime", "onnx")
    missing = tmp_path / "model.onnx"
    with pytest.raises(CheckpointError, match="model.onnx: ONNX model file not found"):
        OnnxRuntimeBackend(missing)
    with pytest.raises(CheckpointError, match="not found"):
        read_onnx_metadata(missing)
    missing.write_bytes(b"")  # present: now the missing runtime is what stops it
    with pytest.raises(CrackSAMError, match="onnxruntime is not installed"):
        OnnxRuntimeBackend(missing)


def test_missing_files_say_not_found_before_missing_runtimes(tmp_path, monkeypatch):
    from cracksam.deployment.export import export_openvino
    from cracksam.deployment.quantize import quantize_onnx_dynamic
    from cracksam.inference.backend_openvino import OpenVINOBackend

    _without(monkeypatch, "onnxruntime", "onnxruntime.quantization", "openvino")
    with pytest.raises(CheckpointError, match="not found"):
        OpenVINOBackend(tmp_path / "model.xml")
    with pytest.raises(CheckpointError, match="not found"):
        export_openvino(tmp_path / "model.onnx", tmp_path / "out.xml")
    with pytest.raises(CheckpointError, match="not found"):
        quantize_onnx_dynamic(tmp_path / "model.onnx", tmp_path / "out.onnx")


def test_overlay_of_a_mask_that_does_not_fit_the_picture_is_a_user_error():
    from cracksam.inspection.core import inspect_mask
    from cracksam.inspection.overlay import render_inspection

    mask = np.zeros((8, 8), np.uint8)
    with pytest.raises(InvalidValueError, match="picture is 4x4 px but the mask is 8x8 px"):
        render_inspection(np.zeros((4, 4, 3), np.uint8), inspect_mask(mask))
