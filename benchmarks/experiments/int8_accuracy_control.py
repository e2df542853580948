"""Mixed-precision INT8 of a conv model through NNCF's accuracy control (issue 26 point 5).

Post-training INT8 of the whole network moves crack edges by a pixel or two (strict mask IoU 0.89-0.95
against float on real photos, the floor is 0.97).  ``nncf.quantize_with_accuracy_control`` quantises
everything, ranks the quantisers by how much they change the output, and returns the worst groups to
float until a metric is within ``--max-drop`` of the float model's.  The metric here is the one the
floor uses: pooled strict mask IoU against the float model's masks, on CHOOSE photos (training photos).
The result is then scored on PARITY photos (validation photos, never used for choosing) by
``int8_parity_photos.py``.

    python benchmarks/experiments/int8_accuracy_control.py MODEL.onnx OUT.xml --calib DIR --choose DIR \
        [--max-drop 0.02] [--window 1024]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _inputs(folder: str, window: int, multiple: int = 32) -> list[np.ndarray]:
    from cracksam.data.io import read_image
    from cracksam.inference.tiling import pad_to_multiple

    out = []
    for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".png")):
        image = read_image(path)
        h, w = image.shape[:2]
        top, left = max(0, (h - window) // 2), max(0, (w - window) // 2)
        image = pad_to_multiple(image[top:top + window, left:left + window], multiple)
        out.append(image.astype(np.float32).transpose(2, 0, 1)[None].copy())
    return out


def _masks(compiled, items: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for x in items:
        logits = next(iter(compiled(x).values()))
        out.append(logits[0, 1] > logits[0, 0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx")
    parser.add_argument("out")
    parser.add_argument("--calib", required=True)
    parser.add_argument("--choose", required=True)
    parser.add_argument("--max-drop", type=float, default=0.02)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--max-iterations", type=int, default=30)
    args = parser.parse_args()

    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    from cracksam.inference.backend_openvino import write_openvino_metadata
    from cracksam.inference.backends import read_onnx_metadata

    core = ov.Core()
    model = core.read_model(args.onnx)
    calib = _inputs(args.calib, args.window)
    choose = _inputs(args.choose, args.window)
    # f32 as NNCF's own validation and cracksam's OpenVINO backend compile: the CPU plugin's default
    # on a CPU with BF16 support is bf16, whose masks differ from fp32's (0.985 mask IoU here).
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    reference = _masks(core.compile_model(model, "CPU", f32), choose)
    indexed = list(range(len(choose)))

    def validate(compiled, dataset) -> float:
        inter = union = 0
        for i in dataset:
            logits = next(iter(compiled(choose[i]).values()))
            m = logits[0, 1] > logits[0, 0]
            inter += np.count_nonzero(m & reference[i])
            union += np.count_nonzero(m | reference[i])
        return inter / max(1, union)

    t0 = time.perf_counter()
    quantized = nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(calib),
        nncf.Dataset(indexed, lambda i: choose[i]),
        validation_fn=validate,
        max_drop=args.max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(calib),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            max_num_iterations=args.max_iterations),
    )
    seconds = time.perf_counter() - t0
    meta = read_onnx_metadata(args.onnx)
    meta.update(precision="int8", source=Path(args.onnx).name, quantization=json.dumps(
        {"tool": f"nncf {nncf.__version__}", "method": "accuracy control", "max_drop": args.max_drop}))
    write_openvino_metadata(quantized, meta)
    ov.save_model(quantized, args.out, compress_to_fp16=True)
    fq = [op.get_friendly_name() for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize"]
    convs = [op for op in quantized.get_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")]
    score = validate(core.compile_model(quantized, "CPU", f32), indexed)
    summary = {"choose_mask_iou": score, "seconds": round(seconds, 1), "fake_quantize": len(fq),
               "convolutions": len(convs), "max_drop": args.max_drop, "calib": len(calib), "choose": len(choose)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
