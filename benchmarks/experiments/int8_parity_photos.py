"""INT8 export against its float model on real photos (issue 26 point 5): pooled and per-photo mask IoU,
and the shift (dy, dx) in -4..4 that maximises the IoU (0, 0 when the INT8 masks are aligned).

    python benchmarks/experiments/int8_parity_photos.py MODEL_DIR INT8.xml|INT8.onnx PHOTO_DIR [PHOTO_DIR ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from cracksam.data.io import read_image
from cracksam.inference.backends import OnnxRuntimeBackend, OpenVINOBackend
from cracksam.inference.predictor import Predictor


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b)))


def main(model: str, xml: str, *folders: str) -> None:
    ref = Predictor.from_path(model, runtime="torch")
    q = Predictor(OnnxRuntimeBackend(xml) if xml.endswith(".onnx") else OpenVINOBackend(xml))
    inter = union = 0
    per, t_ref, t_q = [], 0.0, 0.0
    shifts = []
    for path in sorted(p for f in folders for p in Path(f).iterdir() if p.suffix.lower() in (".jpg", ".png")):
        image = read_image(path)
        t0 = time.perf_counter()
        a = ref.predict_one(image).mask()
        t1 = time.perf_counter()
        b = q.predict_one(image).mask()
        t_ref, t_q = t_ref + t1 - t0, t_q + time.perf_counter() - t1
        inter, union = inter + np.count_nonzero(a & b), union + np.count_nonzero(a | b)
        per.append(_iou(a, b))
        best = max(((_iou(a, np.roll(b, (dy, dx), (0, 1))), (dy, dx)) for dy in range(-4, 5) for dx in range(-4, 5)))
        shifts.append(best[1])
    print(f"{len(per)} photos: pooled mask IoU {inter / max(1, union):.4f}, min per photo {min(per):.4f}, "
          f"best shifts {sorted(set(shifts))}, torch {t_ref:.1f} s, int8 {t_q:.1f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
