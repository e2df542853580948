"""Mixed-precision INT8 by NNCF's accuracy control: every layer INT8 except those that move the mask.

Post-training INT8 of every layer of the bundled conv model moved its crack masks far from the float
ones (NNCF: mask IoU 0.0002 against float on training photos; ONNX Runtime static: 0.886 on the 16
validation photos; issue 26).  ``nncf.quantize_with_accuracy_control`` quantises everything, ranks the
quantised layers by how much each changes the result, and returns the worst to float until a metric
is within ``max_drop`` of the float model's.  The metric here is what the export's parity floor
measures: pooled strict mask IoU (crack = softmax crack probability >= 0.5) against the float
model's masks, on the calibration images.  The export's parity report then checks the result on its
own images, so nothing is both chosen and judged on the same photos when the two sets differ.

Both models are run at float32 (``INFERENCE_PRECISION_HINT f32``, as NNCF's own validation and
:class:`~cracksam.inference.backends.OpenVINOBackend` do): on a CPU with BF16 the plugin's default
is bf16, whose masks already differ from float32's (mask IoU 0.985 on the bundled model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cracksam.deployment.openvino_ir import check_xml_path, import_openvino, save_ir
from cracksam.deployment.quantize import read_for_quantization, require_nncf
from cracksam.errors import CrackSAMError
from cracksam.inference.backend_openvino import write_openvino_metadata
from cracksam.inference.backends import require_file

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def crack_mask(logits: np.ndarray) -> np.ndarray:
    """(N, 2, H, W) logits -> (N, H, W) crack masks: crack probability >= 0.5, i.e. l1 >= l0."""
    return logits[:, 1] >= logits[:, 0]


def mask_iou(masks: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """IoU of crack pixels pooled over all images (1.0 when both are empty everywhere)."""
    inter = sum(int(np.count_nonzero(a & b)) for a, b in zip(masks, reference, strict=True))
    union = sum(int(np.count_nonzero(a | b)) for a, b in zip(masks, reference, strict=True))
    return inter / union if union else 1.0


def float_layers(model: Any) -> list[str]:
    """Names of the convolutions / matrix products of an OpenVINO model whose data input is not
    quantised (no FakeQuantize in front): the layers left in float."""
    kinds = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")
    out = []
    for op in model.get_ops():
        if op.get_type_name() in kinds:
            source = op.input_value(0).get_node()
            if source.get_type_name() != "FakeQuantize":
                out.append(op.get_friendly_name())
    return sorted(out)


def quantize_int8_accuracy(
    onnx_path: str | os.PathLike[str],
    xml_out: str | os.PathLike[str],
    calibration_images: np.ndarray,
    max_drop: float = 0.02,
    model_type: str | None = None,
    max_iterations: int = 30,
) -> Path:
    """INT8 of the ONNX export (or FP32/FP16 IR) at ``onnx_path`` with the layers that move the mask kept in float,
    saved as an OpenVINO IR at ``xml_out``.

    ``calibration_images``: (N, 3, S, S) float32 RGB 0..255 windows, used both to calibrate the
    quantisers and to measure the mask IoU against float; ``max_drop``: the largest drop of that
    IoU below 1.0 accepted (absolute); ``max_iterations``: rounds of returning layers to float.
    ``model_type="transformer"``: NNCF's ViT handling (CrackSAM).  The IR's metadata records the
    method, the mask IoU reached on the calibration images and the layers left in float."""
    source = require_file(onnx_path, "model")
    ov = import_openvino()
    nncf = require_nncf()
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    xml_out = check_xml_path(xml_out)
    if not 0.0 < max_drop < 1.0:
        raise CrackSAMError(f"the INT8 mask IoU drop must be in (0, 1), got {max_drop}")
    if model_type not in (None, "transformer"):
        raise CrackSAMError(f"unknown model_type {model_type!r} (choose transformer or None)")
    images = np.asarray(calibration_images, dtype=np.float32)
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[1] != 3:
        raise CrackSAMError("INT8 accuracy control needs (N, 3, S, S) calibration images, got shape "
                            f"{tuple(images.shape)}")
    items = [np.ascontiguousarray(x[None]) for x in images]
    core = ov.Core()
    model, meta = read_for_quantization(core, source)
    compiled = core.compile_model(model, "CPU", F32)
    reference = [crack_mask(next(iter(compiled(x).values()))) for x in items]

    def validate(candidate: Any, indices: Any) -> float:
        chosen = list(indices)
        masks = [crack_mask(next(iter(candidate(items[i]).values()))) for i in chosen]
        return mask_iou(masks, [reference[i] for i in chosen])

    kwargs: dict[str, Any] = {}
    if model_type == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    indices = list(range(len(items)))
    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(items), nncf.Dataset(indices, lambda i: items[i]), validation_fn=validate,
        max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE, preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(items),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(max_num_iterations=max_iterations),
        **kwargs)
    reached = validate(core.compile_model(quantized, "CPU", F32), indices)
    kept = float_layers(quantized)
    meta.update(
        precision="int8",
        source=source.name,
        quantization=json.dumps({"tool": f"nncf {nncf.__version__}", "method": "accuracy control",
                                 "metric": "mask IoU against float on the calibration images",
                                 "max_drop": max_drop, "reached": round(reached, 4),
                                 "calibration_images": len(items), "float_layers": kept}),
    )
    write_openvino_metadata(quantized, meta)
    # Weights stay fp32: the layers kept in float are kept for their precision.
    return save_ir(ov, quantized, xml_out, compress_to_fp16=False)


__all__ = ["crack_mask", "float_layers", "mask_iou", "quantize_int8_accuracy"]
