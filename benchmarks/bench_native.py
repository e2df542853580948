"""Native-resolution prediction of a large frame: a 1920x1080 survey frame on this CPU.

    python benchmarks/bench_native.py [--model DIR] [--threads 2] [--repeats 5]

Times ``Predictor.predict_one`` on one 1920x1080 frame (a mosaic of real cfd photos when
``../shared`` is there, else a synthetic frame) for each way the default model can run it:

* PyTorch, native, one whole-frame forward (window 2048);
* PyTorch, native, blended 1024-px windows (the default window);
* OpenVINO FP16 (when installed), 448x448 blended windows (a fixed-shape export).

All in one process, one after another, so the ratios are comparable; results go to RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import command_line, machine, today, write_section  # noqa: E402

from cracksam.inference.backends import TorchBackend  # noqa: E402
from cracksam.inference.predictor import Predictor  # noqa: E402
from cracksam.models.default import default_model_path  # noqa: E402
from cracksam.models.io import load_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cfd" / "images"


def frame(h: int = 1080, w: int = 1920) -> np.ndarray:
    """A mosaic of cfd photos (480x320) cut to h x w, or a noisy grey frame without ../shared."""
    if SHARED.is_dir():
        from cracksam.data import read_image

        photos = [read_image(p) for p in sorted(SHARED.glob("*.jpg"))[:16]]
        rows = [np.concatenate(photos[i * 4:(i + 1) * 4], axis=1) for i in range(4)]
        return np.ascontiguousarray(np.concatenate(rows, axis=0)[:h, :w])
    rng = np.random.default_rng(0)
    return rng.integers(90, 160, (h, w, 3), dtype=np.uint8)


def time_it(predictor: Predictor, image: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    predictor.predict_one(image)  # warm-up (oneDNN / OpenVINO compile for these shapes)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred = predictor.predict_one(image)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), pred.mask()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint folder (default: the bundled model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = Path(args.model) if args.model else default_model_path()
    model = load_model(path)
    image = frame()
    rows = []
    whole = Predictor(TorchBackend(model, threads=args.threads), mode="native", window=2048, batch_size=1)
    t_whole, ref = time_it(whole, image, args.repeats)
    rows.append(("PyTorch fp32, native, whole frame in one forward", t_whole, ref))
    windows = Predictor(TorchBackend(model, threads=args.threads), mode="native", batch_size=2)
    rows.append(("PyTorch fp32, native, 1024-px windows", *time_it(windows, image, args.repeats)))
    try:
        from cracksam.deployment.export import export_onnx, export_openvino
        from cracksam.inference.backends import OpenVINOBackend

        with tempfile.TemporaryDirectory() as tmp:
            onnx = export_onnx(model, Path(tmp) / "m.onnx")
            xml = export_openvino(onnx, Path(tmp) / "m.xml", fp16=True)
            ov = Predictor(OpenVINOBackend(xml, threads=args.threads), mode="native", batch_size=4)
            rows.append(("OpenVINO fp16, 448-px windows", *time_it(ov, image, args.repeats)))
    except Exception as exc:  # noqa: BLE001  (optional runtime: report why it is missing)
        print(f"OpenVINO skipped: {exc}")
    lines = [
        "## A 1920×1080 frame at native resolution (`benchmarks/bench_native.py`, issue 11)",
        "",
        f"- Command: `{command_line()}`",
        f"- Machine: {machine()}. Date: {today()}.",
        f"- Model: `{path}`; frame: {'16 cfd photos tiled' if SHARED.is_dir() else 'synthetic'}, "
        f"median of {args.repeats} runs after a warm-up.",
        "",
        "| runtime and way | seconds per frame | × whole-frame PyTorch | mask IoU vs whole-frame PyTorch |",
        "|---|---:|---:|---:|",
    ]
    for name, secs, mask in rows:
        inter, union = np.logical_and(mask, ref).sum(), np.logical_or(mask, ref).sum()
        iou = inter / union if union else 1.0
        lines.append(f"| {name} | {secs:.3f} | {t_whole / secs:.2f} | {iou:.4f} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("bench_native", text)


if __name__ == "__main__":
    main()
