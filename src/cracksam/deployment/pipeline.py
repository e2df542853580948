"""Export a model to every runtime and check each export against PyTorch.

Used by ``cracksam export`` and ``cracksam bench`` (which times the runtimes with
:mod:`cracksam.deployment.timing`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
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
from cracksam.deployment.export import MIN_IOU, disk_full, export_onnx, export_openvino, no_space, parity_report
from cracksam.deployment.export_qat import export_openvino_qat
from cracksam.deployment.quantize import fuse_onnx, quantize_int8, quantize_onnx_dynamic, quantize_onnx_static
from cracksam.deployment.quantize_accuracy import quantize_int8_accuracy
from cracksam.errors import ConfigError, CrackSAMError
from cracksam.inference.backends import TARGETS, OnnxRuntimeBackend, OpenVINOBackend, TorchBackend
from cracksam.inference.tiling import scale_image, tile_origins
from cracksam.models.cracksam import CrackSAM
from cracksam.models.quantizers import QUANTIZERS_JSON, has_quantizer_files

# File name of each target in an export folder.
TARGET_FILES: dict[str, str] = {
    "onnx": "model.onnx", "onnx-fused": "model_fused.onnx", "onnx-int8": "model_int8_dynamic.onnx",
    "onnx-int8-static": "model_int8_static.onnx", "openvino-fp32": "model_fp32.xml",
    "openvino-fp16": "model_fp16.xml", "openvino-int8": "model_int8.xml", "openvino-int8-qat": "model_int8_qat.xml",
}
CALIBRATED = ("onnx-int8-static", "openvino-int8")  # targets that need calibration images


def check_qat_model(model_dir: str | Path | None) -> None:
    """Refuse ``openvino-int8-qat`` for a model folder without trained quantisers (``train --qat``);
    called before anything is exported."""
    if model_dir is None or not has_quantizer_files(model_dir):
        raise ConfigError(f"openvino-int8-qat needs a model trained with --qat; {model_dir or 'this model'} has no "
                          f"{QUANTIZERS_JSON}")


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
    from cracksam.data.inputs import expand_inputs

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


def load_network_tiles(sources: Sequence[str | Path], image_size: int, scale: float = 1.0,
                       limit: int = 64) -> tuple[np.ndarray, str]:
    """S×S windows of photos at the scale a tile/native-mode model runs at (``scale`` of the
    native resolution), not whole photos shrunk to S×S: calibration and parity must see
    cracks as thin as the model will.  Windows are taken on a grid without overlap, photo after
    photo, until ``limit``; photos smaller than a window are edge-padded, as the Predictor does."""
    from cracksam.data.inputs import expand_inputs

    files, problems = expand_inputs([str(s) for s in sources])
    if problems:
        raise ConfigError("; ".join(f"{name}: {why}" for name, why in problems))
    tiles: list[np.ndarray] = []
    for path in files:
        image = scale_image(read_image(path), scale)
        h, w = image.shape[:2]
        ph, pw = max(image_size - h, 0), max(image_size - w, 0)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
        for y in tile_origins(image.shape[0], image_size, image_size):
            for x in tile_origins(image.shape[1], image_size, image_size):
                tiles.append(image[y : y + image_size, x : x + image_size])
        if len(tiles) >= limit:
            break
    if not tiles:
        raise ConfigError("no images to use: give a folder of sample images")
    tiles = tiles[:limit]
    where = f"{len(tiles)} {image_size}-px window(s) at scale {scale:g} from {', '.join(str(s) for s in sources)}"
    return np.stack(tiles).astype(np.float32).transpose(0, 3, 1, 2).copy(), where


def inputs_for_model(model: Any, sources: Sequence[str | Path], limit: int = 64,
                     synthetic_fallback: int = 0) -> tuple[np.ndarray, str]:
    """Network inputs the way ``model`` sees photos: whole photos resized to S×S for a resize-mode
    model (CrackSAM), native-scale S×S windows for tile/native-mode models (the conventional
    networks).  Synthetic crack images when no source is given (``synthetic_fallback``)."""
    config = model.config
    size = int(config.image_size)
    mode = getattr(config, "inference_mode", "resize")
    if sources and mode != "resize":
        return load_network_tiles(sources, size, float(getattr(config, "inference_scale", 1.0)), limit)
    return load_network_inputs(sources, size, limit=limit, synthetic_fallback=synthetic_fallback)


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
    dynamic_shape: bool = False,
    model_dir: str | Path | None = None,
    photos: list[np.ndarray] | None = None,
    int8_max_drop: float = 0.0,
) -> ExportRun:
    """Export ``model`` (an ``nn.Module`` with ``config.image_size``) to each target in
    ``out_dir``, then compare each export with PyTorch on ``samples``.  An export whose masks
    disagree beyond its tolerance is deleted (never left to be deployed) and reported failed.
    ``dynamic_shape``: ONNX graphs with dynamic height and width for fully convolutional models
    (native-resolution prediction in ONNX Runtime / OpenVINO).  ``model_dir``: the folder ``model``
    was loaded from, for ``openvino-int8-qat`` (its trained quantisers, see ``train --qat``).
    ``photos``: whole (1, 3, H, W) photos (:mod:`~cracksam.deployment.parity_photos`) on which the
    dynamic-shape exports are checked instead of ``samples``, as they will run in ``predict``.
    ``int8_max_drop`` > 0: ``openvino-int8`` keeps in float the layers that move the mask, until its
    mask IoU against float on ``calibration`` is at least ``1 - int8_max_drop``
    (:mod:`~cracksam.deployment.quantize_accuracy`); 0: every layer INT8.

    An export that fails part way (a full disk, an exporter's error) leaves none of its files: each
    file is written atomically, and those already written are deleted, as they were never checked.
    A full disk (or quota) is a :class:`CrackSAMError` of one line naming ``out``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if disk_full(exc, out):
            raise no_space(out, "the export") from None
        raise
    tolerance = {**MIN_IOU, **(min_iou or {})}
    reference = TorchBackend(model, threads=threads)
    written: list[Path] = []  # files of this run in out, removed if it does not finish
    scratch: Path | None = None
    try:
        # Without the onnx target the ONNX file is only a step towards the others: it goes to a scratch
        # folder, so a model.onnx already in --out (an earlier export of the user's) is never replaced or deleted.
        scratch = None if "onnx" in targets else Path(tempfile.mkdtemp(prefix=".onnx-", dir=out))
        return _export_targets(model, out, scratch or out, targets, samples, calibration, tolerance, reference,
                               opset, threads, dynamic_shape, model_dir, written, photos, int8_max_drop)
    except BaseException as exc:  # Ctrl-C too: files never checked against PyTorch are not left to be deployed
        _remove(written)
        if isinstance(exc, Exception) and disk_full(exc, out):
            raise no_space(out, f"the {', '.join(targets)} export") from None
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _remove(paths: Sequence[Path]) -> None:
    """Delete export files (an IR's .bin with its .xml); what cannot be deleted is left, not raised."""
    for path in paths:
        for file in (path, path.with_suffix(".bin")) if path.suffix == ".xml" else (path,):
            try:
                file.unlink(missing_ok=True)
            except OSError:
                pass


def _export_targets(model: Any, out: Path, onnx_dir: Path, targets: Sequence[str], samples: np.ndarray,
                    calibration: np.ndarray | None, tolerance: dict[str, float], reference: Any, opset: int,
                    threads: int | None, dynamic_shape: bool, model_dir: str | Path | None,
                    written: list[Path], photos: list[np.ndarray] | None = None,
                    int8_max_drop: float = 0.0) -> ExportRun:
    onnx_path = onnx_dir / TARGET_FILES["onnx"]
    t0 = time.perf_counter()
    export_onnx(model, onnx_path, opset=opset, dynamic_shape=dynamic_shape)  # every target starts from it
    if onnx_dir == out:
        written.append(onnx_path)
    made: list[tuple[str, Path, float]] = []
    for target in targets:
        t1 = time.perf_counter()
        path = out / TARGET_FILES[target]
        if target in CALIBRATED and (calibration is None or len(calibration) == 0):
            raise CrackSAMError(f"{target} needs calibration images (--calib FOLDER)")
        if target == "openvino-int8-qat":
            check_qat_model(model_dir)
        if target == "onnx":
            made.append((target, onnx_path, t1 - t0))
            continue
        if target == "onnx-fused":
            fuse_onnx(onnx_path, path)
        elif target == "onnx-int8":
            quantize_onnx_dynamic(onnx_path, path)
        elif target == "onnx-int8-static":
            quantize_onnx_static(onnx_path, path, calibration)  # type: ignore[arg-type]  # checked above
        elif target == "openvino-int8-qat":
            export_openvino_qat(model_dir, path, dynamic_shape=dynamic_shape)  # type: ignore[arg-type]  # checked
        elif target == "openvino-int8":
            # NNCF's transformer handling is for the ViT; a CNN is quantised as one.
            kind = "transformer" if isinstance(model, CrackSAM) else None
            if int8_max_drop > 0:
                quantize_int8_accuracy(onnx_path, path, calibration, int8_max_drop, model_type=kind)  # type: ignore[arg-type]
            else:
                quantize_int8(onnx_path, path, calibration, model_type=kind)  # type: ignore[arg-type]
        else:
            export_openvino(onnx_path, path, fp16=TARGETS[target][1] == "fp16")
        written.append(path)
        made.append((target, path, time.perf_counter() - t1))
    run = ExportRun()
    for target, path, seconds in made:
        runtime, precision = TARGETS[target]
        backend: Any = (
            OnnxRuntimeBackend(path, threads=threads) if runtime == "onnxruntime"
            else OpenVINOBackend(path, threads=threads)
        )
        inputs = photos if photos and getattr(backend, "dynamic", False) else samples
        report = parity_report(reference, backend, inputs)
        report["inputs"] = "whole photos" if inputs is photos else "S×S windows"
        run.results.append(
            ExportResult(
                target, path, report, tolerance[precision], report["mask_iou"] >= tolerance[precision], seconds
            )
        )
    for r in run.failed:
        r.path.unlink(missing_ok=True)
        r.path.with_suffix(".bin").unlink(missing_ok=True)
    return run


def write_report(run: ExportRun, path: Path) -> None:
    """``parity.json`` (atomic: a full disk leaves the previous one, and says so in one line)."""
    try:
        atomic_write_text(path, json.dumps(run.to_dict(), indent=2) + "\n")
    except OSError as exc:
        if disk_full(exc, path.parent):
            raise no_space(path.parent, path.name) from None
        raise
