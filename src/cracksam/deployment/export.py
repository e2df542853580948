"""Export CrackSAM for deployment: ONNX, OpenVINO IR (FP32/FP16) and INT8 by NNCF post-training
quantisation, plus a parity check of an exported model against a reference.

The exported graph takes ``images`` (B, 3, S, S) float32 RGB in 0..255 (the SAM normalisation is
inside the graph) and returns ``logits`` (B, 2, S, S) (channel 1 = crack; the bilinear
upsampling from S/4 is inside the graph too).  The batch axis is dynamic.  Every file carries
cracksam metadata (version, model config JSON, image size, precision) that the backends of
:mod:`cracksam.deployment.backends` read back.

Limits: ONNX files are written as a single protobuf, so models over 2 GB (ViT-H) cannot be
exported (external-data ONNX is not supported); ViT-B and ViT-L fit.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from cracksam import __version__
from cracksam.config import atomic_write_bytes
from cracksam.deployment.backends import (
    META_PREFIX,
    _missing,
    _read_openvino_model,
    _require_file,
    model_metadata,
    read_onnx_metadata,
    read_openvino_metadata,
    write_openvino_metadata,
)
from cracksam.errors import CheckpointError, CrackSAMError
from cracksam.models.cracksam import CrackSAM
from cracksam.models.deltas import has_lora
from cracksam.models.deltas import merge_lora as merge_lora_fn
from cracksam.models.segmodels import SegModel

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
# Mask IoU an exported model must reach against PyTorch, by precision.
MIN_IOU: dict[str, float] = {"fp32": 0.99, "fp16": 0.99, "int8": 0.97}
_PROTOBUF_LIMIT = 2**31 - 1
Exporter = Literal["auto", "torchscript", "dynamo"]


# -- ONNX ------------------------------------------------------------------------------------------


def _image_size(model: torch.nn.Module) -> int:
    """``model.config.image_size`` (export_onnx checks it is an int); torch types module
    attributes as Tensor | Module, hence the Any."""
    config: Any = model.config
    return int(config.image_size)


def _onnx_metadata(model: torch.nn.Module, precision: str, lora_merged: bool, exporter: str) -> dict[str, str]:
    if isinstance(model, (CrackSAM, SegModel)):
        base = model_metadata(model.config, precision)
    else:  # students and baselines: no CrackSAM config, only what a runtime needs
        base = {"format": "cracksam", "version": __version__, "model": type(model).__name__,
                "image_size": str(_image_size(model)), "precision": precision}
    return {**base, "lora_merged": str(bool(lora_merged)).lower(), "exporter": exporter}


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporters' chatter: tracer warnings about shapes that are constant for a fixed
    input size, the legacy exporter's deprecation notice, and the dynamo exporter's progress."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", message=r".*(ONNX|onnx|opset).*")
        yield


def _export_torchscript(net: torch.nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool, tmp: Path) -> Any:
    """The legacy TorchScript-tracing exporter (``dynamo=False``)."""
    import onnx

    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with _quiet_export():
        torch.onnx.export(
            net, (example,), str(tmp), dynamo=False, export_params=True, opset_version=opset,
            do_constant_folding=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes,
        )
    return onnx.load(str(tmp))


def _export_dynamo(net: torch.nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool) -> Any:
    """The torch.export-based exporter; it implements opset >= 18 only."""
    shapes = {INPUT_NAME: {0: torch.export.Dim.DYNAMIC}} if dynamic_batch else None
    with _quiet_export():
        program = torch.onnx.export(
            net, (example,), None, dynamo=True, opset_version=max(opset, 18), input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_shapes=shapes, external_data=False, optimize=True, verbose=False,
        )
    assert program is not None  # dynamo=True always returns the program
    return program.model_proto


def _finish_proto(proto: Any, meta: dict[str, str], size: int, dynamic_batch: bool) -> None:
    """Name the dimensions of input and output and attach metadata, in place."""
    batch: str | int = "batch" if dynamic_batch else 1
    for value, channels in ((proto.graph.input[0], 3), (proto.graph.output[0], 2)):
        dims = value.type.tensor_type.shape.dim
        while len(dims) < 4:
            dims.add()
        for dim, want in zip(dims, (batch, channels, size, size), strict=False):
            if isinstance(want, str):
                dim.dim_param = want
            else:
                dim.dim_value = want
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"{META_PREFIX}.{key}", value
    proto.producer_name = "cracksam"
    proto.producer_version = __version__
    if "config" in meta:
        cfg = json.loads(meta["config"])
        name = f"CrackSAM {cfg['backbone']}" if "backbone" in cfg else cfg.get("arch", "model")
    else:
        name = meta.get("model", "model")
    proto.doc_string = f"{name} crack segmentation: images (B,3,S,S) RGB 0..255 -> logits (B,2,S,S), channel 1 = crack"


def _verify(data: bytes, net: torch.nn.Module, dynamic_batch: bool) -> None:
    """Run the serialised graph in ONNX Runtime and compare with the PyTorch model it came from."""
    try:
        import onnxruntime as ort
    except ImportError:  # export still works; parity can be checked later
        warnings.warn("onnxruntime is not installed: the exported graph was not verified", stacklevel=3)
        return
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    size = _image_size(net)
    gen = torch.Generator().manual_seed(1)
    for batch in (1, 3) if dynamic_batch else (1,):
        x = torch.rand(batch, 3, size, size, generator=gen) * 255
        with torch.inference_mode():
            ref = net(x).numpy()
        out = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        err = float(np.abs(out - ref).max()) if out.shape == ref.shape else float("inf")
        if not err <= 1e-3 * max(1.0, float(np.abs(ref).max())):
            raise RuntimeError(f"ONNX Runtime output differs from PyTorch for batch {batch} "
                               f"(shape {out.shape} vs {ref.shape}, max abs diff {err:.3g})")


def export_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    merge_lora: bool = True,
    exporter: Exporter = "auto",
    verify: bool = True,
) -> Path:
    """Export ``model`` to an ONNX file at ``path`` and return the path.

    The model is deep-copied (``model`` itself keeps its LoRA), put on CPU in float32, LoRA is
    merged into the weights (``merge_lora``) and the copy is exported with input ``images``
    (B, 3, S, S) and output ``logits`` (B, 2, S, S), with a dynamic batch axis unless
    ``dynamic_batch=False`` (then B = 1).  ``exporter``: ``torchscript`` is PyTorch's legacy
    tracing exporter (``dynamo=False``: opset 17, fast); ``dynamo`` the torch.export-based one
    (opset >= 18); ``auto`` tries torchscript and falls back to dynamo if it fails or is gone.
    With ``verify`` the graph is run in ONNX Runtime (batch 1 and 3) and compared with PyTorch
    before the file is written.  The file is written atomically (a temp file in the same
    folder, then renamed)."""
    try:
        import onnx
    except ImportError:
        raise _missing("onnx") from None
    if not isinstance(getattr(getattr(model, "config", None), "image_size", None), int):
        raise TypeError(f"export_onnx needs a model with config.image_size, got {type(model).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise CrackSAMError(f"{path}: an ONNX export must be named *.onnx")
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise CrackSAMError(f"unknown exporter {exporter!r} (choose auto, torchscript or dynamo)")
    n_bytes = sum(t.numel() * 4 for t in model.state_dict().values())
    if n_bytes > _PROTOBUF_LIMIT - (64 << 20):
        raise CrackSAMError(
            f"{type(model).__name__}: {n_bytes / 2**30:.1f} GiB of weights do not fit a single ONNX file "
            "(2 GB protobuf limit); external-data ONNX export is not supported"
        )
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    lora_merged = merge_lora and has_lora(net)
    if merge_lora:
        merge_lora_fn(net)
    size = _image_size(net)
    example = torch.rand(2 if dynamic_batch else 1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    path.parent.mkdir(parents=True, exist_ok=True)

    attempts = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    errors: list[str] = []
    for name in attempts:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if name == "torchscript":
                proto = _export_torchscript(net, example, opset, dynamic_batch, tmp)
                used = f"torch {torch.__version__} torchscript (dynamo=False), opset {opset}"
            else:
                proto = _export_dynamo(net, example, opset, dynamic_batch)
                used = f"torch {torch.__version__} dynamo, opset {max(opset, 18)}"
            _finish_proto(proto, _onnx_metadata(net, "fp32", lora_merged, used), size, dynamic_batch)
            onnx.checker.check_model(proto)
            data = proto.SerializeToString()
            if verify:
                _verify(data, net, dynamic_batch)
        except Exception as exc:  # try the next exporter, report all if none works
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).strip()[:500]}")
            continue
        finally:
            tmp.unlink(missing_ok=True)
        atomic_write_bytes(path, data)
        return path
    raise RuntimeError(f"ONNX export of CrackSAM failed ({'; '.join(errors)})")


# -- OpenVINO --------------------------------------------------------------------------------------


def _import_openvino() -> Any:
    try:
        import openvino as ov
    except ImportError:
        raise _missing("openvino") from None
    return ov


def _check_xml_path(xml_path: str | os.PathLike[str]) -> Path:
    xml_path = Path(xml_path)
    if xml_path.suffix.lower() != ".xml":
        raise CrackSAMError(f"{xml_path}: an OpenVINO IR must be named *.xml (its weights go to a .bin beside it)")
    return xml_path


def _save_ir(ov: Any, model: Any, xml_path: Path, compress_to_fp16: bool) -> Path:
    """Save an IR as atomically as two files allow: into a temp folder beside the target, then
    rename the .bin and then the .xml, so a reader never sees a new .xml with an old .bin
    missing, and a crash before the renames leaves the old IR intact."""
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{xml_path.stem}.", suffix=".tmp", dir=xml_path.parent))
    try:
        tmp_xml = tmp_dir / "model.xml"
        ov.save_model(model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        os.replace(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return xml_path


def export_openvino(onnx_path: str | os.PathLike[str], xml_path: str | os.PathLike[str], fp16: bool = True) -> Path:
    """Convert an ONNX export to an OpenVINO IR (``xml_path`` + the ``.bin`` beside it).

    ``fp16`` compresses the weights to FP16 (as in the paper's Appendix A; on CPU they are
    decompressed and computed in FP32); ``fp16=False`` keeps FP32 weights.  The ONNX file's
    cracksam metadata goes to the IR's rt_info with precision ``fp16``/``fp32``."""
    ov = _import_openvino()
    onnx_path = _require_file(onnx_path, "ONNX model")
    xml_path = _check_xml_path(xml_path)
    meta = read_onnx_metadata(onnx_path)
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise CheckpointError(f"{onnx_path}: OpenVINO cannot convert this ONNX model ({exc})") from None
    meta.update(precision="fp16" if fp16 else "fp32", source=onnx_path.name)
    write_openvino_metadata(model, meta)
    return _save_ir(ov, model, xml_path, compress_to_fp16=fp16)


def _calibration_items(images: Any, size: int) -> list[np.ndarray]:
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items = list(images)
    elif isinstance(images, np.ndarray) and images.ndim == 3:
        items = [images]
    else:
        items = [np.asarray(im.detach().cpu() if isinstance(im, torch.Tensor) else im) for im in images]
    if not items:
        raise CrackSAMError("the calibration set is empty; INT8 quantisation needs representative images")
    out = []
    for i, im in enumerate(items):
        if im.shape != (3, size, size):
            raise CrackSAMError(f"calibration image {i} has shape {tuple(im.shape)}, expected (3, {size}, {size}) "
                                "float RGB in 0..255")
        out.append(np.ascontiguousarray(im, dtype=np.float32)[None])
    return out


def quantize_int8(
    onnx_or_xml_path: str | os.PathLike[str],
    xml_out: str | os.PathLike[str],
    calibration_images: Sequence[np.ndarray] | np.ndarray,
    subset_size: int = 300,
    preset: Literal["performance", "mixed"] = "performance",
    model_type: Literal["transformer"] | None = "transformer",
    fast_bias_correction: bool = True,
) -> Path:
    """INT8 post-training quantisation with NNCF, saved as an OpenVINO IR at ``xml_out``.

    ``onnx_or_xml_path``: an ONNX export or an FP32/FP16 IR of it.  ``calibration_images``:
    (3, S, S) float32 RGB 0..255 images (a sequence, or one (N, 3, S, S) array); NNCF uses
    ``min(subset_size, N)`` of them.  ``preset``: ``performance`` quantises weights and
    activations symmetrically, ``mixed`` uses asymmetric activations (better for activations
    that are not centred, e.g. after GELU).  ``model_type="transformer"`` enables NNCF's
    transformer handling (SmoothQuant, keeping softmax/LayerNorm-sensitive ops in float), which
    is what SAM's ViT encoder is; ``None`` treats it as a plain CNN."""
    ov = _import_openvino()
    try:
        import nncf
    except ImportError:
        raise _missing("nncf") from None
    source = _require_file(onnx_or_xml_path, "model")
    xml_out = _check_xml_path(xml_out)
    if preset not in ("performance", "mixed"):
        raise CrackSAMError(f"unknown quantisation preset {preset!r} (choose performance or mixed)")
    if subset_size < 1:
        raise CrackSAMError(f"subset_size must be >= 1, got {subset_size}")
    core = ov.Core()
    if source.suffix.lower() == ".onnx":
        meta = read_onnx_metadata(source)
        try:
            model = core.read_model(str(source))
        except Exception as exc:
            raise CheckpointError(f"{source}: OpenVINO cannot read this ONNX model ({exc})") from None
    elif source.suffix.lower() == ".xml":
        model = _read_openvino_model(core, source)
        meta = read_openvino_metadata(model)
    else:
        raise CheckpointError(f"{source}: expected an .onnx file or an OpenVINO .xml IR to quantise")
    if meta.get("image_size"):
        size = int(meta["image_size"])
    else:
        dims = model.inputs[0].get_partial_shape()
        if not dims.rank.is_static or not dims[3].is_static:
            raise CheckpointError(f"{source}: cannot tell the model's input size")
        size = dims[3].get_length()
    items = _calibration_items(calibration_images, size)
    kwargs: dict[str, Any] = {
        "preset": nncf.QuantizationPreset.PERFORMANCE if preset == "performance" else nncf.QuantizationPreset.MIXED,
        "subset_size": min(int(subset_size), len(items)),
        "fast_bias_correction": fast_bias_correction,
    }
    if model_type == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    elif model_type is not None:
        raise CrackSAMError(f"unknown model_type {model_type!r} (choose transformer or None)")
    quantized = nncf.quantize(model, nncf.Dataset(items), **kwargs)
    meta.update(
        precision="int8",
        source=source.name,
        quantization=json.dumps({"tool": f"nncf {nncf.__version__}", "preset": preset, "model_type": model_type,
                                 "calibration_images": kwargs["subset_size"]}),
    )
    write_openvino_metadata(quantized, meta)
    return _save_ir(ov, quantized, xml_out, compress_to_fp16=True)


# -- parity ----------------------------------------------------------------------------------------


def _crack_probability(logits: np.ndarray) -> np.ndarray:
    """Softmax over the 2 classes, crack channel: sigmoid(l1 - l0), computed stably."""
    d = logits[:, 1].astype(np.float64) - logits[:, 0].astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -d))


def parity_report(reference: Any, candidate: Any, images: np.ndarray, threshold: float = 0.5,
                  batch_size: int = 4) -> dict[str, Any]:
    """Compare two backends on ``images`` ((N, 3, S, S) float32 RGB 0..255).

    Returns ``max_abs_prob_diff`` (largest difference of softmax crack probabilities over all
    pixels), ``mean_abs_prob_diff``, ``max_abs_logit_diff``, ``mask_iou`` (IoU of the two crack
    masks ``prob >= threshold`` pooled over all images; 1.0 when both are empty),
    ``pixel_agreement``, ``crack_fraction`` (of the reference), ``n_images``, ``threshold`` and
    the two backends' ``name``/``precision``."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise CrackSAMError(f"parity needs a non-empty (N, 3, S, S) batch of images, got shape {images.shape}")
    if reference.image_size != candidate.image_size:
        raise CrackSAMError(f"the two models take different sizes: {reference.image_size} vs {candidate.image_size}")
    inter = union = agree = ref_pos = total = 0
    max_prob = max_logit = sum_prob = 0.0
    for start in range(0, len(images), max(1, int(batch_size))):
        x = images[start:start + batch_size]
        a, b = reference.run(x), candidate.run(x)
        if a.shape != b.shape:
            raise CrackSAMError(f"output shapes differ: {reference.name} {a.shape} vs {candidate.name} {b.shape}")
        pa, pb = _crack_probability(a), _crack_probability(b)
        diff = np.abs(pa - pb)
        max_prob, sum_prob = max(max_prob, float(diff.max())), sum_prob + float(diff.sum())
        max_logit = max(max_logit, float(np.abs(a.astype(np.float64) - b).max()))
        ma, mb = pa >= threshold, pb >= threshold  # same rule as Predictor and the metrics
        inter += int(np.count_nonzero(ma & mb))
        union += int(np.count_nonzero(ma | mb))
        agree += int(np.count_nonzero(ma == mb))
        ref_pos += int(np.count_nonzero(ma))
        total += ma.size
    return {
        "n_images": int(len(images)),
        "threshold": float(threshold),
        "max_abs_prob_diff": max_prob,
        "mean_abs_prob_diff": sum_prob / total,
        "max_abs_logit_diff": max_logit,
        "mask_iou": inter / union if union else 1.0,
        "pixel_agreement": agree / total,
        "crack_fraction": ref_pos / total,
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
    "parity_report",
    "quantize_int8",
]
