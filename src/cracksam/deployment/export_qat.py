"""INT8 OpenVINO IR of a model trained with quantisation-aware training (``cracksam train --qat``).

Post-training quantisation calibrates activation ranges after the fact; a QAT model brings its own,
trained with the weights (:mod:`cracksam.training.qat`).  The fake-quantised network
(:func:`cracksam.models.quantizers.load_quantized`) is converted straight from PyTorch by OpenVINO,
which turns each NNCF quantiser into a ``FakeQuantize`` and runs the convolutions in INT8.  The IR
carries the same cracksam metadata as the other exports (precision ``int8``), and is checked
against the float PyTorch model like every export: one below its parity floor is never used.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from cracksam.deployment.export_onnx import _onnx_metadata
from cracksam.deployment.openvino_ir import check_xml_path, import_openvino, save_ir
from cracksam.errors import CheckpointError
from cracksam.inference.backend_openvino import write_openvino_metadata
from cracksam.models.quantizers import QUANTIZERS_JSON, load_quantized


def export_openvino_qat(model_dir: str | os.PathLike[str], xml_path: str | os.PathLike[str],
                        dynamic_shape: bool = True) -> Path:
    """Write the INT8 IR of QAT model folder ``model_dir`` to ``xml_path`` (+ ``.bin``).

    Batch is dynamic; with ``dynamic_shape`` height and width are too (multiples of the network's
    ``input_multiple``), for native-resolution prediction of a fully convolutional network.
    Raises :class:`CheckpointError` for a folder without (valid) quantisers."""
    ov = import_openvino()
    xml = check_xml_path(xml_path)
    model = load_quantized(model_dir)  # verifies quantizers.json and both checksums
    record = json.loads((Path(model_dir) / QUANTIZERS_JSON).read_text())
    config = getattr(model, "config", None)
    size = int(getattr(config, "image_size", 0) or 0)
    if size < 1:
        raise CheckpointError(f"{model_dir}: the model does not say its input size")
    spatial = bool(dynamic_shape) and bool(getattr(model, "dynamic_input", False))
    shape = [-1, 3, -1, -1] if spatial else [-1, 3, size, size]
    example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constant shapes and quantiser ranges
        try:
            ir = ov.convert_model(model, example_input=example, input=[(ov.PartialShape(shape), ov.Type.f32)])
        except Exception as exc:  # OpenVINO's frontend raises its own error types
            raise CheckpointError(f"{model_dir}: OpenVINO cannot convert the quantised model ({str(exc)[:300]})") \
                from None
    meta = _onnx_metadata(model, "int8", lora_merged=True, exporter="openvino-pytorch")
    if spatial:
        meta.update(dynamic="true", multiple=str(max(1, int(getattr(model, "input_multiple", 1)))))
    meta.update(source=QUANTIZERS_JSON, quantization=json.dumps(
        {"tool": record.get("tool"), "method": "quantisation-aware training (NNCF fake quantisers)",
         "quantizers_sha256": record.get("tensors_sha256")}))
    write_openvino_metadata(ir, meta)
    # fp32 constants: the FakeQuantize of each weight rounds from the trained fp32 values
    return save_ir(ov, ir, xml, compress_to_fp16=False)
