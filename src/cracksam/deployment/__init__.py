"""Deployment: export CrackSAM to ONNX / OpenVINO (FP32, FP16, INT8), check each export's parity
against PyTorch, pick the fastest checked runtime (``--runtime auto``) and stream video.

The runtimes themselves (backends, the Predictor) are :mod:`cracksam.inference`, the layer below.
ONNX, ONNX Runtime, OpenVINO and NNCF are optional dependencies, imported when used.
"""

from cracksam.deployment.export import (
    DEFAULT_OPSET,
    INPUT_NAME,
    MIN_IOU,
    OUTPUT_NAME,
    check_parity,
    export_onnx,
    export_openvino,
    parity_report,
)
from cracksam.deployment.quantize import quantize_int8

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "MIN_IOU",
    "OUTPUT_NAME",
    "check_parity",
    "export_onnx",
    "export_openvino",
    "parity_report",
    "quantize_int8",
]
