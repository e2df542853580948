"""INT8 quantisation and graph fusion of an ONNX export.

Three ways, each written as a new file that keeps the export's cracksam metadata (precision
``int8`` and a ``quantization`` record saying how):

* :func:`quantize_onnx_dynamic` -- ONNX Runtime dynamic quantisation: weights INT8 per output
  channel, activations quantised on the fly per tensor.  MatMul runs through MLAS's u8s8 kernels,
  which is where a ViT encoder spends its time; needs no calibration.
* :func:`quantize_onnx_static` -- ONNX Runtime static QDQ quantisation, activations calibrated on
  real images at the scale the model runs at; for conv models.
* :func:`quantize_int8` -- NNCF post-training quantisation to an OpenVINO IR.

In the ONNX Runtime paths the first layer (which sees raw, unnormalised-scale pixels) and the
last (the logit layer, whose small differences between the two classes decide the mask) stay in
float.  ``reduce_range`` (7-bit weights) is off by default: ONNX Runtime suggests it on x86 CPUs
without VNNI against saturation of the u8s8 multiply-add, but on the bundled model on this AVX2
machine it only cost accuracy (dynamic INT8 mask IoU 0.963 with it, 0.977 without; static
unchanged), i.e. no saturation showed.

:func:`fuse_onnx` applies ONNX Runtime's transformer fusions (attention, LayerNorm, GELU, bias)
to a ViT export, or ONNX Runtime's extended graph optimisations (Conv+activation fusions) to a
conv model, and saves the result as a portable ONNX file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from cracksam.deployment.export_onnx import check_onnx_path
from cracksam.deployment.openvino_ir import check_xml_path, import_openvino, save_ir
from cracksam.errors import CheckpointError, CrackSAMError
from cracksam.inference.backend_openvino import read_openvino_metadata, read_openvino_model, write_openvino_metadata
from cracksam.inference.backends import META_PREFIX, missing_dependency, read_onnx_metadata, require_file


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


def require_nncf() -> Any:
    """``nncf``, or the one-line error saying how to install it."""
    try:
        import nncf
    except ImportError:
        raise missing_dependency("nncf") from None
    return nncf


def read_for_quantization(core: Any, source: Path) -> tuple[Any, dict[str, str]]:
    """The ``openvino.Model`` of an ONNX export or an FP32/FP16 IR, and its cracksam metadata."""
    if source.suffix.lower() == ".onnx":
        try:
            return core.read_model(str(source)), read_onnx_metadata(source)
        except Exception as exc:
            raise CheckpointError(f"{source}: OpenVINO cannot read this ONNX model ({exc})") from None
    if source.suffix.lower() == ".xml":
        model = read_openvino_model(core, source)
        return model, read_openvino_metadata(model)
    raise CheckpointError(f"{source}: expected an .onnx file or an OpenVINO .xml IR to quantise")


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
    is what SAM's ViT encoder is; ``None`` treats it as a plain CNN (what ``export_all`` uses
    for conv models)."""
    source = require_file(onnx_or_xml_path, "model")
    ov = import_openvino()
    nncf = require_nncf()
    xml_out = check_xml_path(xml_out)
    if preset not in ("performance", "mixed"):
        raise CrackSAMError(f"unknown quantisation preset {preset!r} (choose performance or mixed)")
    if subset_size < 1:
        raise CrackSAMError(f"subset_size must be >= 1, got {subset_size}")
    core = ov.Core()
    model, meta = read_for_quantization(core, source)
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
    return save_ir(ov, quantized, xml_out, compress_to_fp16=True)




# -- ONNX Runtime ------------------------------------------------------------------------------------


def _load_onnx(path: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise missing_dependency("onnx") from None
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise CheckpointError(f"{path}: not a readable ONNX model ({exc})") from None


# A CrackSAM export (TorchScript exporter: node names carry the module path).  Logit cosine of a
# ViT-B + LoRA export at 448 when only this group is INT8 (dynamic, per channel; 4 cfd photos):
# attn/proj 0.989, mask decoder 0.992, attn/qkv 0.994, mlp/lin1 0.997, mlp/lin2 0.99999, neck 0.99995;
# qkv + lin1 + lin2 together 0.993.  The decoder (under 1 % of the FLOPs) and the output projections
# (8 % of the encoder's) cost most accuracy for least speed, and the neck's convolutions run slower
# as ConvInteger than in float (36 vs ~7 ms), so only the blocks' qkv and MLP run INT8
# (benchmarks/RESULTS.md, "ViT-B INT8").
_SAM_ENCODER_BLOCK = "/image_encoder/blocks."
_SAM_FLOAT = ("/attn/proj/",)


def _float_layers(proto: Any) -> list[str]:
    """Names of the weight layers (Conv / MatMul / Gemm) kept in float: the first and the last in
    graph order (see the module docstring); in a CrackSAM graph everything but the encoder
    blocks' qkv and MLP layers (measured above)."""
    layers = [n.name for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")]
    if not layers:
        return []
    keep = {layers[0], layers[-1]}
    if any(name.startswith(_SAM_ENCODER_BLOCK) for name in layers):
        keep |= {name for name in layers if not name.startswith(_SAM_ENCODER_BLOCK)
                 or any(part in name for part in _SAM_FLOAT)}
    return sorted(keep)


def _save_with_metadata(proto: Any, meta: dict[str, str], out: Path) -> Path:
    """Write ``proto`` to ``out`` atomically with ``meta`` as its cracksam metadata."""
    from cracksam.config import atomic_write_bytes

    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"{META_PREFIX}.{key}", str(value)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, proto.SerializeToString())
    return out


def _ort_quantization() -> Any:
    try:
        import onnxruntime
        from onnxruntime import quantization
    except ImportError:
        raise missing_dependency("onnxruntime") from None
    return onnxruntime, quantization


def quantize_onnx_dynamic(onnx_path: str | os.PathLike[str], out: str | os.PathLike[str],
                          keep_float: Sequence[str] | None = None, reduce_range: bool = False) -> Path:
    """ONNX Runtime dynamic INT8 of an fp32 export (weights per channel; see the module
    docstring).  ``keep_float``: node names left in float (default: first and last layer)."""
    source = require_file(onnx_path, "ONNX model")
    ort, q = _ort_quantization()
    out = check_onnx_path(out)
    meta = read_onnx_metadata(source)
    with tempfile.TemporaryDirectory(prefix=".quant-", dir=out.parent if out.parent.exists() else None) as tmp:
        pre = Path(tmp) / "pre.onnx"
        q.quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        excluded = list(_float_layers(_load_onnx(pre)) if keep_float is None else keep_float)
        # quantize_dynamic first turns each Gemm into ".../Gemm_MatMul" + Add, so an exclusion by the
        # Gemm's own name misses it (the mask decoder's MLPs ran INT8 that way): exclude both names.
        excluded += [f"{name}_MatMul" for name in excluded if name.endswith("/Gemm")]
        tmp_out = Path(tmp) / "q.onnx"
        q.quantize_dynamic(str(pre), str(tmp_out), per_channel=True, reduce_range=reduce_range,
                           weight_type=q.QuantType.QInt8, nodes_to_exclude=excluded)
        quantized = _load_onnx(tmp_out)
    meta.update(precision="int8", source=source.name, quantization=json.dumps(
        {"tool": f"onnxruntime {ort.__version__}", "method": "dynamic", "per_channel": True,
         "reduce_range": reduce_range, "float_layers": excluded}))
    return _save_with_metadata(quantized, meta, out)


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over (3, H, W) float RGB 0..255 images, one at a time."""

    def __init__(self, input_name: str, images: Sequence[np.ndarray]) -> None:
        self._items = iter([{input_name: np.ascontiguousarray(im, np.float32)[None]} for im in images])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - some ORT versions call it between passes
        pass


def quantize_onnx_static(onnx_path: str | os.PathLike[str], out: str | os.PathLike[str],
                         calibration_images: Sequence[np.ndarray] | np.ndarray,
                         keep_float: Sequence[str] | None = None, reduce_range: bool = False,
                         method: Literal["minmax", "percentile", "entropy"] = "percentile") -> Path:
    """ONNX Runtime static QDQ INT8: Conv/MatMul weights per channel, activations per tensor with
    ranges calibrated on ``calibration_images`` ((N, 3, S, S) or a sequence of (3, H, W) float
    RGB 0..255 -- take them at the scale the model runs at, e.g. native-resolution tiles);
    ``method`` percentile (99.999 %) by default: on the bundled model it kept more of the mask than
    min-max (on photos resized to 448: 0.967 vs 0.956 mask IoU; on native-scale windows 0.933 with
    16 calibration windows vs 0.892 with 64) and entropy (0.892).  The
    graph is first pre-processed (shape inference, constant folding: BatchNorm is already folded
    into the convolutions by the exporter).  ``keep_float``: node names left in float (default:
    first and last layer)."""
    source = require_file(onnx_path, "ONNX model")
    ort, q = _ort_quantization()
    out = check_onnx_path(out)
    images = list(np.asarray(calibration_images, np.float32)) if isinstance(calibration_images, np.ndarray) \
        else [np.asarray(im, np.float32) for im in calibration_images]
    if not images:
        raise CrackSAMError("the calibration set is empty; INT8 quantisation needs representative images")
    if any(im.ndim != 3 or im.shape[0] != 3 for im in images):
        raise CrackSAMError("calibration images must be (3, H, W) float RGB in 0..255")
    methods = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
               "entropy": q.CalibrationMethod.Entropy}
    if method not in methods:
        raise CrackSAMError(f"unknown calibration method {method!r} (choose {', '.join(methods)})")
    meta = read_onnx_metadata(source)
    with tempfile.TemporaryDirectory(prefix=".quant-", dir=out.parent if out.parent.exists() else None) as tmp:
        pre = Path(tmp) / "pre.onnx"
        q.quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        proto = _load_onnx(pre)
        excluded = list(_float_layers(proto) if keep_float is None else keep_float)
        tmp_out = Path(tmp) / "q.onnx"
        q.quantize_static(
            str(pre), str(tmp_out), _Calibration(proto.graph.input[0].name, images), quant_format=q.QuantFormat.QDQ,
            per_channel=True, reduce_range=reduce_range, activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8, op_types_to_quantize=["Conv", "MatMul", "Gemm"],
            nodes_to_exclude=excluded, calibrate_method=methods[method],
        )
        quantized = _load_onnx(tmp_out)
    meta.update(precision="int8", source=source.name, quantization=json.dumps(
        {"tool": f"onnxruntime {ort.__version__}", "method": f"static QDQ, {method} calibration",
         "calibration_images": len(images), "per_channel": True, "reduce_range": reduce_range,
         "float_layers": excluded}))
    return _save_with_metadata(quantized, meta, out)


def fuse_onnx(onnx_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """The export with ONNX Runtime's fusions applied offline (see the module docstring): a
    CrackSAM (ViT) graph through ``onnxruntime.transformers.optimizer`` (model type ``vit``),
    any other through the extended graph optimisations of an ONNX Runtime session.  Numerics are
    those of fp32 up to the order of floating-point operations."""
    source = require_file(onnx_path, "ONNX model")
    ort, _ = _ort_quantization()
    out = check_onnx_path(out)
    meta = read_onnx_metadata(source)
    vit = "backbone" in json.loads(meta.get("config") or "{}")
    with tempfile.TemporaryDirectory(prefix=".fuse-", dir=out.parent if out.parent.exists() else None) as tmp:
        tmp_out = Path(tmp) / "fused.onnx"
        if vit:
            from onnxruntime.transformers.fusion_options import FusionOptions
            from onnxruntime.transformers.optimizer import optimize_model

            options = FusionOptions("vit")
            # Its LayerNorm fusion also matches SAM's LayerNorm2d (a norm over channels in NCHW)
            # and makes it a norm over the last axis: logits off by 0.06 on a tiny CrackSAM
            # (fp32 export: 1e-7).  SAM's ViT LayerNorms are exported as LayerNormalization already.
            options.enable_layer_norm = False
            # num_heads / hidden_size 0: read from the graph; opt_level 0: only the portable
            # fusions (the session adds its own hardware-specific ones when the file is loaded).
            optimized = optimize_model(str(source), model_type="vit", num_heads=0, hidden_size=0, opt_level=0,
                                       optimization_options=options)
            optimized.save_model_to_file(str(tmp_out))
            how = "onnxruntime.transformers optimizer (vit)"
        else:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            options.optimized_model_filepath = str(tmp_out)
            options.log_severity_level = 3
            ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
            how = "onnxruntime extended graph optimisations"
        fused = _load_onnx(tmp_out)
    meta.update(source=source.name, fusion=how)
    return _save_with_metadata(fused, meta, out)


__all__ = ["fuse_onnx", "quantize_int8", "quantize_onnx_dynamic", "quantize_onnx_static", "require_nncf",
           "read_for_quantization"]
