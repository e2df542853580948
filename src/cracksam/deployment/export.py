"""Export CrackSAM for deployment: OpenVINO IR (FP32/FP16) from an ONNX export, and the parity
check of an exported model against a reference.

The other steps live in their own modules: ONNX export (:mod:`~cracksam.deployment.export_onnx`,
re-exported here), INT8 quantisation by NNCF or ONNX Runtime and ONNX graph fusion
(:mod:`~cracksam.deployment.quantize`), writing an IR (:mod:`~cracksam.deployment.openvino_ir`).
Every exported file carries cracksam metadata (version, model config JSON, image size, precision)
that the backends of :mod:`cracksam.inference.backends` read back.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cracksam.deployment.export_onnx import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, export_onnx
from cracksam.deployment.openvino_ir import check_xml_path, import_openvino, save_ir
from cracksam.errors import CheckpointError, CrackSAMError
from cracksam.inference.backends import read_onnx_metadata, require_file, write_openvino_metadata

# Mask IoU an exported model must reach against PyTorch, by precision.
MIN_IOU: dict[str, float] = {"fp32": 0.99, "fp16": 0.99, "int8": 0.97}

#: errno of a full disk: no space left, or the user's quota spent.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Free bytes under which a writer library's own error is taken for a full disk: OpenVINO's C++
#: streams report one as ``RuntimeError: ... basic_ios::clear``, without an errno.
LOW_SPACE_BYTES = 1 << 20


# -- a full disk -----------------------------------------------------------------------------------


def disk_full(exc: BaseException, folder: str | os.PathLike[str]) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a full disk or quota, or a library's
    errno-less error raised while ``folder``'s file system has (almost) no space left."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, (CrackSAMError, OSError)):  # ours say what went wrong; an OSError carries its errno
        return False
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:  # the folder may not have been made yet
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free < LOW_SPACE_BYTES
    except OSError:
        return False


def no_space(folder: str | os.PathLike[str], what: str) -> CrackSAMError:
    """The one-line error of a full disk while writing ``what`` into ``folder``."""
    return CrackSAMError(f"{folder}: no space left on the device (or quota exceeded) while writing {what}; free some "
                         "space and run it again")


# -- OpenVINO --------------------------------------------------------------------------------------


def export_openvino(onnx_path: str | os.PathLike[str], xml_path: str | os.PathLike[str], fp16: bool = True) -> Path:
    """Convert an ONNX export to an OpenVINO IR (``xml_path`` + the ``.bin`` beside it).

    ``fp16`` compresses the weights to FP16 (as in the paper's Appendix A; on CPU they are
    decompressed and computed in FP32); ``fp16=False`` keeps FP32 weights.  The ONNX file's
    cracksam metadata goes to the IR's rt_info with precision ``fp16``/``fp32``."""
    onnx_path = require_file(onnx_path, "ONNX model")
    ov = import_openvino()
    xml_path = check_xml_path(xml_path)
    meta = read_onnx_metadata(onnx_path)
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise CheckpointError(f"{onnx_path}: OpenVINO cannot convert this ONNX model ({exc})") from None
    meta.update(precision="fp16" if fp16 else "fp32", source=onnx_path.name)
    write_openvino_metadata(model, meta)
    return save_ir(ov, model, xml_path, compress_to_fp16=fp16)


# -- parity ----------------------------------------------------------------------------------------


def _crack_probability(logits: np.ndarray) -> np.ndarray:
    """Softmax over the 2 classes, crack channel: sigmoid(l1 - l0), computed stably."""
    d = logits[:, 1].astype(np.float64) - logits[:, 0].astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -d))


def parity_report(reference: Any, candidate: Any, images: np.ndarray | list[np.ndarray], threshold: float = 0.5,
                  batch_size: int = 4) -> dict[str, Any]:
    """Compare two backends on ``images`` ((N, 3, S, S) float32 RGB 0..255), or on a list of
    (1, 3, H, W) photos of different sizes (dynamic-shape exports: whole photos, one at a time).

    Returns ``max_abs_prob_diff`` (largest difference of softmax crack probabilities over all
    pixels), ``mean_abs_prob_diff``, ``max_abs_logit_diff``, ``mask_iou`` (IoU of the two crack
    masks ``prob >= threshold`` pooled over all images; 1.0 when both are empty),
    ``mask_f1_2px`` (F1 of the candidate's crack pixels against the reference's with the field's
    2-px matching tolerance: how many of the strict-IoU disagreements are a boundary moved by a
    pixel or two; reported beside the strict IoU, never the gate), ``pixel_agreement``,
    ``crack_fraction`` (of the reference), ``logit_cosine`` (cosine
    similarity of the two crack-vs-background logit maps ``l1 - l0`` over all pixels: the
    accuracy measure for models with random weights, whose masks mean little), ``n_images``,
    ``threshold`` and the two backends' ``name``/``precision``."""
    batches: list[np.ndarray]
    if isinstance(images, list):  # photos of different sizes: one forward pass each
        batches = [np.asarray(x, dtype=np.float32).reshape(-1, *np.shape(x)[-3:]) for x in images]
        if not batches or any(b.ndim != 4 or b.shape[1] != 3 for b in batches):
            raise CrackSAMError("parity needs a non-empty list of (1, 3, H, W) photos")
    else:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[0] == 0:
            raise CrackSAMError(f"parity needs a non-empty (N, 3, S, S) batch of images, got shape {images.shape}")
        step = max(1, int(batch_size))
        batches = [images[start:start + step] for start in range(0, len(images), step)]
    if reference.image_size != candidate.image_size:
        raise CrackSAMError(f"the two models take different sizes: {reference.image_size} vs {candidate.image_size}")
    # Here, not at the top: thin_metrics pulls in scikit-image, which importing this module need not load.
    from cracksam.evaluation.thin_metrics import tolerance_counts, tolerance_f1_from_counts

    inter = union = agree = ref_pos = total = 0
    tolerant = np.zeros(4, np.int64)
    max_prob = max_logit = sum_prob = dot = norm_a = norm_b = 0.0
    for x in batches:
        a, b = reference.run(x), candidate.run(x)
        if a.shape != b.shape:
            raise CrackSAMError(f"output shapes differ: {reference.name} {a.shape} vs {candidate.name} {b.shape}")
        pa, pb = _crack_probability(a), _crack_probability(b)
        da, db = (a[:, 1] - a[:, 0]).astype(np.float64).ravel(), (b[:, 1] - b[:, 0]).astype(np.float64).ravel()
        dot, norm_a, norm_b = dot + float(da @ db), norm_a + float(da @ da), norm_b + float(db @ db)
        diff = np.abs(pa - pb)
        max_prob, sum_prob = max(max_prob, float(diff.max())), sum_prob + float(diff.sum())
        max_logit = max(max_logit, float(np.abs(a.astype(np.float64) - b).max()))
        ma, mb = pa >= threshold, pb >= threshold  # same rule as Predictor and the metrics
        inter += int(np.count_nonzero(ma & mb))
        union += int(np.count_nonzero(ma | mb))
        agree += int(np.count_nonzero(ma == mb))
        ref_pos += int(np.count_nonzero(ma))
        total += ma.size
        for ref_mask, cand_mask in zip(ma, mb, strict=True):  # (B, H, W): one H x W mask per image
            tolerant += tolerance_counts(cand_mask, ref_mask)[0]
    return {
        "n_images": sum(len(x) for x in batches),
        "threshold": float(threshold),
        "max_abs_prob_diff": max_prob,
        "mean_abs_prob_diff": sum_prob / total,
        "max_abs_logit_diff": max_logit,
        "mask_iou": inter / union if union else 1.0,
        "mask_f1_2px": float(tolerance_f1_from_counts(tolerant)["f1"]),
        "pixel_agreement": agree / total,
        "crack_fraction": ref_pos / total,
        "logit_cosine": dot / np.sqrt(norm_a * norm_b) if norm_a > 0 and norm_b > 0 else float(norm_a == norm_b),
        "reference": f"{reference.name}/{reference.precision}",
        "candidate": f"{candidate.name}/{candidate.precision}",
        "candidate_precision": candidate.precision,
    }


def check_parity(report: dict[str, Any], min_iou: float | None = None) -> None:
    """Raise :class:`CrackSAMError` when ``report["mask_iou"] < min_iou``.  ``min_iou`` defaults
    to :data:`MIN_IOU` for the candidate's precision (0.99 for fp32/fp16, 0.97 for int8)."""
    if min_iou is None:
        precision = report.get("candidate_precision", "fp32")
        min_iou = MIN_IOU.get(precision, MIN_IOU["int8"])
    if report["mask_iou"] < min_iou:
        raise CrackSAMError(
            f"exported model {report.get('candidate', '?')} does not match {report.get('reference', '?')}: "
            f"mask IoU {report['mask_iou']:.4f} < {min_iou:.4f} (max |Δp| {report['max_abs_prob_diff']:.4f}, "
            f"{report['n_images']} images, threshold {report.get('threshold', 0.5)})"
        )


__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "MIN_IOU",
    "OUTPUT_NAME",
    "check_parity",
    "export_onnx",
    "export_openvino",
    "disk_full",
    "no_space",
    "parity_report",
]
