"""Deployment: export CrackSAM to ONNX / OpenVINO (FP32, FP16, INT8) and run it through one
backend interface (PyTorch, ONNX Runtime, OpenVINO).

ONNX, ONNX Runtime, OpenVINO and NNCF are optional dependencies, imported when used.
"""

from cracksam.deployment.backends import (
    PRECISIONS,
    Backend,
    OnnxRuntimeBackend,
    OpenVINOBackend,
    TorchBackend,
    model_metadata,
    open_backend,
    read_onnx_metadata,
    read_openvino_metadata,
)
from cracksam.deployment.export import (
    DEFAULT_OPSET,
    INPUT_NAME,
    MIN_IOU,
    OUTPUT_NAME,
    check_parity,
    export_onnx,
    export_openvino,
    parity_report,
    quantize_int8,
)

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "MIN_IOU",
    "OUTPUT_NAME",
    "PRECISIONS",
    "Backend",
    "OnnxRuntimeBackend",
    "OpenVINOBackend",
    "TorchBackend",
    "check_parity",
    "export_onnx",
    "export_openvino",
    "model_metadata",
    "open_backend",
    "parity_report",
    "quantize_int8",
    "read_onnx_metadata",
    "read_openvino_metadata",
]
