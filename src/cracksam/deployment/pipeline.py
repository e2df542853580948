"""Export a model to every runtime and check each export against PyTorch; time the runtimes.

Used by ``cracksam export`` and ``cracksam bench``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cracksam.config import atomic_write_text
from cracksam.data.io import read_image
from cracksam.data.synthetic import synthetic_pair
from cracksam.data.transforms import build_transform
from cracksam.deployment.backends import TARGETS, OnnxRuntimeBackend, OpenVINOBackend, TorchBackend
from cracksam.deployment.export import MIN_IOU, export_onnx, export_openvino, parity_report, quantize_int8
from cracksam.errors import ConfigError, CrackSAMError


def parse_targets(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in TARGETS]
    if bad or not names:
        raise ConfigError(f"unknown export target(s) {bad or text!r}; choose from {', '.join(TARGETS)}")
    return names


def load_network_inputs(
    sources: Sequence[str | Path], image_size: int, limit: int = 64, synthetic_fallback: int = 0
) -> tuple[np.ndarray, str]:
    """Images from files/folders resized as the Predictor does -> (N, 3, S, S) float32, and a
    description of where they came from.  Without sources, ``synthetic_fallback`` synthetic
    crack images are made (said so in the description)."""
    from cracksam.cli.inputs import expand_inputs

    resize = build_transform(image_size, augment=False)
    arrays: list[np.ndarray] = []
    files, problems = expand_inputs([str(s) for s in sources]) if sources else ([], [])
    if problems:
        raise ConfigError("; ".join(f"{name}: {why}" for name, why in problems))
    for path in files[:limit]:
        arrays.append(resize(image=read_image(path))["image"])
    where = f"{len(arrays)} image(s) from {', '.join(str(s) for s in sources)}" if arrays else ""
    if not arrays and synthetic_fallback:
        arrays = [resize(image=synthetic_pair((256, 256), seed=i)[0])["image"] for i in range(synthetic_fallback)]
        where = f"{len(arrays)} synthetic crack images (no sample folder given)"
    if not arrays:
        raise ConfigError("no images to use: give a folder of sample images")
    return np.stack(arrays).astype(np.float32).transpose(0, 3, 1, 2).copy(), where


@dataclass
class ExportResult:
    target: str
    path: Path
    parity: dict[str, Any]
    min_iou: float
    passed: bool
    seconds: float


@dataclass
class ExportRun:
    results: list[ExportResult] = field(default_factory=list)
    samples: str = ""

    @property
    def failed(self) -> list[ExportResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "results": [
                {
                    "target": r.target,
                    "path": str(r.path),
                    "passed": r.passed,
                    "min_iou": r.min_iou,
                    "seconds": round(r.seconds, 2),
                    "parity": r.parity,
                }
                for r in self.results
            ],
        }


def export_all(
    model: Any,
    out_dir: str | Path,
    targets: Sequence[str],
    samples: np.ndarray,
    calibration: np.ndarray | None = None,
    min_iou: dict[str, float] | None = None,
    opset: int = 17,
    threads: int | None = None,
) -> ExportRun:
    """Export ``model`` (an ``nn.Module`` with ``config.image_size``) to each target in
    ``out_dir``, then compare each export with PyTorch on ``samples``.  An export whose masks
    disagree beyond its tolerance is deleted (never left to be deployed) and reported failed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tolerance = {**MIN_IOU, **(min_iou or {})}
    reference = TorchBackend(model, threads=threads)
    onnx_path = out / "model.onnx"
    t0 = time.perf_counter()
    export_onnx(model, onnx_path, opset=opset)  # every target starts from the ONNX graph
    made: list[tuple[str, Path, float]] = []
    for target in targets:
        _, precision = TARGETS[target]
        t1 = time.perf_counter()
        if target == "onnx":
            made.append((target, onnx_path, t1 - t0))
            continue
        path = out / f"model_{precision}.xml"
        if precision == "int8":
            if calibration is None or len(calibration) == 0:
                raise CrackSAMError("INT8 quantisation needs calibration images (--calib FOLDER)")
            quantize_int8(onnx_path, path, calibration)
        else:
            export_openvino(onnx_path, path, fp16=precision == "fp16")
        made.append((target, path, time.perf_counter() - t1))
    run = ExportRun()
    for target, path, seconds in made:
        _, precision = TARGETS[target]
        backend = (
            OnnxRuntimeBackend(path, threads=threads) if target == "onnx" else OpenVINOBackend(path, threads=threads)
        )
        report = parity_report(reference, backend, samples)
        run.results.append(
            ExportResult(
                target, path, report, tolerance[precision], report["mask_iou"] >= tolerance[precision], seconds
            )
        )
    for r in run.failed:
        r.path.unlink(missing_ok=True)
        r.path.with_suffix(".bin").unlink(missing_ok=True)
    if "onnx" not in targets:
        onnx_path.unlink(missing_ok=True)  # only an intermediate step here
    return run


def write_report(run: ExportRun, path: Path) -> None:
    atomic_write_text(path, json.dumps(run.to_dict(), indent=2) + "\n")


# -- timing ---------------------------------------------------------------------------------------


def time_backend(backend: Any, batch: np.ndarray, iterations: int = 10, warmup: int = 2) -> dict[str, float]:
    """Latency of ``backend.run(batch)`` (median, p90, min, in ms) and throughput (images/s)."""
    for _ in range(warmup):
        backend.run(batch)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        backend.run(batch)
        times.append(time.perf_counter() - t0)
    times.sort()
    median = statistics.median(times)
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return {
        "latency_ms_median": median * 1000,
        "latency_ms_p90": p90 * 1000,
        "latency_ms_min": times[0] * 1000,
        "images_per_s": batch.shape[0] / median,
        "iterations": iterations,
        "batch": int(batch.shape[0]),
    }
