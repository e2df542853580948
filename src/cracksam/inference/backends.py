"""Inference runtimes behind one small interface, so a Predictor can run a CrackSAM model in
PyTorch, ONNX Runtime or OpenVINO without knowing which.

Every backend has ``name`` (``torch``, ``onnxruntime``, ``openvino``), ``precision`` (``fp32``,
``fp16``, ``int8``), ``image_size`` and ``run(x)``: float32 RGB images in 0..255, (B, 3, S, S),
to float32 logits (B, 2, S, S) with channel 1 = crack.  The exported backends also carry the
``metadata`` written by :mod:`cracksam.deployment.export` (cracksam version, model config JSON,
image size, precision) and ``model_config`` (the parsed :class:`CrackSAMConfig`, or ``None``
for files exported elsewhere), so a model card can be shown -- and the model's inference defaults
(``inference_mode`` / ``inference_scale`` of a student's config) travel with an export.

``dynamic`` says whether ``run`` accepts any (B, 3, H, W) with H and W multiples of ``multiple``
instead of only (B, 3, S, S): true for a :class:`TorchBackend` on a fully convolutional
:class:`SegModel` and for exports made with ``dynamic_shape`` (metadata ``dynamic``/``multiple``),
false for CrackSAM and other exported files (their graphs have a fixed H, W).

``run_many(batches, in_flight)`` runs several batches with up to ``in_flight`` requests at once
(:mod:`cracksam.inference.inflight`; OpenVINO's asynchronous infer requests, ONNX Runtime's
thread-safe ``run`` from several threads) and returns their logits in order -- the same logits as
calling ``run`` on each.

ONNX Runtime and OpenVINO are optional dependencies: they are imported when a backend is
opened, and a missing one is reported as a :class:`CrackSAMError`.  :class:`TorchBackend` lives in
:mod:`cracksam.inference.backend_torch` and is re-exported here.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cracksam.errors import CheckpointError, ConfigError, CrackSAMError, CrackSAMWarning
from cracksam.inference.backend_torch import TorchBackend, check_input, model_metadata
from cracksam.inference.protocol import Backend
from cracksam.models.cracksam import CrackSAM, CrackSAMConfig
from cracksam.models.segmodels import SegModel, SegModelConfig

# Metadata keys written at export time.  ONNX stores them in ``metadata_props`` as
# ``cracksam.<key>``; OpenVINO IRs in ``rt_info`` under ``cracksam/<key>``.
META_PREFIX = "cracksam"
META_KEYS = ("format", "version", "config", "image_size", "precision", "lora_merged", "exporter", "source",
             "quantization", "fusion", "dynamic", "multiple")
PRECISIONS = ("fp32", "fp16", "int8")
SUFFIXES = {".onnx": "onnxruntime", ".xml": "openvino"}

# Export targets by name: (runtime, precision).  Variants of one runtime and precision (onnx-fused,
# onnx-int8-static) come after the plain one, whose name target_name gives for both.
TARGETS: dict[str, tuple[str, str]] = {
    "onnx": ("onnxruntime", "fp32"),
    "onnx-fused": ("onnxruntime", "fp32"),
    "onnx-int8": ("onnxruntime", "int8"),
    "onnx-int8-static": ("onnxruntime", "int8"),
    "openvino-fp32": ("openvino", "fp32"),
    "openvino-fp16": ("openvino", "fp16"),
    "openvino-int8": ("openvino", "int8"),
    "openvino-int8-qat": ("openvino", "int8"),  # from a model trained with --qat (its own quantisers)
}


def target_name(runtime: str, precision: str) -> str:
    """One vocabulary for runtimes: the export target's name (``onnx``, ``openvino-fp16``, ...),
    ``torch`` for PyTorch in fp32; ``<runtime>-<precision>`` for anything else."""
    for name, (target_runtime, target_precision) in TARGETS.items():
        if (runtime, precision) == (target_runtime, target_precision):
            return name
    return "torch" if (runtime, precision) == ("torch", "fp32") else f"{runtime}-{precision}"


def missing_dependency(package: str, extra: str = "deploy") -> CrackSAMError:
    """The error for an optional dependency that is not installed (raise it ``from None``)."""
    return CrackSAMError(f"{package} is not installed; install it (pip install 'cracksam[{extra}]') to use this")


def _parse_config(text: str | None, where: str) -> CrackSAMConfig | SegModelConfig | None:
    """The model config stored in an exported file; None when absent or not understood (a file
    from a newer cracksam still runs, it just has no model card)."""
    if not text:
        return None
    from cracksam.models.io import parse_model_config

    try:
        return parse_model_config(json.loads(text), where=f"{where}:config")
    except (json.JSONDecodeError, ConfigError) as exc:
        warnings.warn(f"{where}: ignoring unreadable cracksam config metadata ({exc})", CrackSAMWarning, stacklevel=3)
        return None


def _image_size_from(meta: dict[str, str], shape: Sequence[Any], where: str) -> int:
    """Image size from the metadata, checked against the graph's input shape (B, 3, S, S)."""
    static = [d if isinstance(d, int) and d > 0 else None for d in list(shape)[2:4]]
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise CheckpointError(f"{where}: input shape {list(shape)} is not (B, 3, S, S); not a CrackSAM model")
    size: int | None = None
    if meta.get("image_size"):
        try:
            size = int(meta["image_size"])
        except ValueError:
            raise CheckpointError(f"{where}: bad image_size metadata {meta['image_size']!r}") from None
    if size is None:
        if static[0] is None or static[0] != static[1]:
            raise CheckpointError(f"{where}: cannot tell the input size (no metadata, input shape {list(shape)})")
        size = static[0]
    if any(s is not None and s != size for s in static):
        raise CheckpointError(f"{where}: metadata says image size {size} but the graph's input is {list(shape)}")
    return size


def _precision_from_name(path: Path) -> str | None:
    match = re.search(r"(?:^|[^a-z0-9])(fp32|fp16|int8)(?:[^a-z0-9]|$)", path.stem.lower())
    return match.group(1) if match else None


def require_file(path: str | os.PathLike[str], kind: str) -> Path:
    """``path`` as a Path when it is an existing file; a :class:`CheckpointError` saying "not found" or
    "is not a file" (naming ``kind``) otherwise, before any optional runtime is imported."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: {kind} file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a file (expected a {kind} file)")
    return path


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``cracksam.*`` metadata of an ONNX file (keys without the prefix)."""
    path = require_file(path, "ONNX model")
    try:
        import onnx
    except ImportError:
        raise missing_dependency("onnx") from None
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise CheckpointError(f"{path}: not a readable ONNX model ({exc})") from None
    prefix = META_PREFIX + "."
    return {p.key[len(prefix):]: p.value for p in proto.metadata_props if p.key.startswith(prefix)}


def _dynamic_from(meta: dict[str, str]) -> tuple[bool, int]:
    """(dynamic, multiple) from an export's metadata; fixed-shape when absent or malformed."""
    try:
        multiple = int(meta.get("multiple", "1"))
    except ValueError:
        return False, 1
    return meta.get("dynamic") == "true" and multiple >= 1, max(1, multiple)


class OnnxRuntimeBackend:
    """An exported ``.onnx`` file run by ONNX Runtime.

    ``providers``: ONNX Runtime execution providers in order of preference (default: CPU).  Those
    not available in this onnxruntime build are skipped with a warning and the CPU provider is
    always kept as the last resort, so ``providers=["CUDAExecutionProvider"]`` uses CUDA where
    it can.  ``threads`` sets ``intra_op_num_threads`` (None: onnxruntime's default, one per
    physical core).  ``graph_optimization``: the session's graph optimisation level (``all``,
    the default, adds the CPU-specific layout fusions; ``extended``, ``basic``, ``none``)."""

    name = "onnxruntime"
    dynamic = False  # exported graphs have a fixed H, W unless exported with dynamic_shape
    multiple = 1

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None,
                 providers: Sequence[str] | None = None, graph_optimization: str = "all") -> None:
        self.path = require_file(path, "ONNX model")
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing_dependency("onnxruntime") from None
        available = ort.get_available_providers()
        wanted = list(providers) if providers else ["CPUExecutionProvider"]
        skipped = [p for p in wanted if p not in available]
        chosen = [p for p in wanted if p in available]
        if "CPUExecutionProvider" not in chosen:
            chosen.append("CPUExecutionProvider")
        if skipped:  # e.g. --device cuda with the CPU-only onnxruntime package: say so in one line
            warnings.warn(f"onnxruntime here has no {', '.join(skipped)} (available: {', '.join(available)}); "
                          f"running with {chosen[0]}", CrackSAMWarning, stacklevel=2)
        levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
        if graph_optimization not in levels:
            raise ConfigError(f"unknown graph optimisation level {graph_optimization!r} (choose {', '.join(levels)})")
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[graph_optimization]
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own RuntimeError subclasses
            raise CheckpointError(f"{self.path}: cannot load ONNX model ({_first_line(exc)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise CheckpointError(f"{self.path}: expected one image input, got {len(inputs)} inputs")
        self._input, self._output = inputs[0].name, outputs[0].name
        meta_map = self.session.get_modelmeta().custom_metadata_map
        prefix = META_PREFIX + "."
        self.metadata = {k[len(prefix):]: v for k, v in meta_map.items() if k.startswith(prefix)}
        self.image_size = _image_size_from(self.metadata, inputs[0].shape, str(self.path))
        self.dynamic, self.multiple = _dynamic_from(self.metadata)
        self.precision = self.metadata.get("precision") or _precision_from_name(self.path) or "fp32"
        self.model_config = _parse_config(self.metadata.get("config"), str(self.path))
        self.providers: list[str] = self.session.get_providers()
        self.threads = threads

    def run(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, self.image_size, self.multiple if self.dynamic else None)
        out = self.session.run([self._output], {self._input: x})[0]
        return np.asarray(out, dtype=np.float32)

    def run_many(self, batches: Sequence[np.ndarray], in_flight: int = 2) -> list[np.ndarray]:
        from cracksam.inference.inflight import run_threaded

        return run_threaded(self.run, batches, in_flight)

    def __repr__(self) -> str:
        return (f"OnnxRuntimeBackend({str(self.path)!r}, image_size={self.image_size}, precision={self.precision}, "
                f"providers={self.providers})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


from cracksam.inference.backend_openvino import (  # noqa: E402  (re-exported; it uses the helpers above)
    OpenVINOBackend,
    read_openvino_metadata,
    write_openvino_metadata,
)


def open_backend(path_or_model: Any, **kw: Any) -> Backend:
    """A backend for a CrackSAM model object (:class:`TorchBackend`), an ``.onnx`` file
    (:class:`OnnxRuntimeBackend`) or an OpenVINO ``.xml`` IR (:class:`OpenVINOBackend`); ``kw``
    goes to the backend.  A backend is returned as is.  CrackSAM checkpoint folders are loaded
    with :func:`cracksam.models.load_model`, not here."""
    if isinstance(path_or_model, (CrackSAM, SegModel)):
        return TorchBackend(path_or_model, **kw)
    if isinstance(path_or_model, (TorchBackend, OnnxRuntimeBackend, OpenVINOBackend)):
        return path_or_model
    if not isinstance(path_or_model, (str, os.PathLike)):
        if isinstance(path_or_model, Backend):
            return path_or_model
        raise TypeError(f"open_backend needs a CrackSAM model or a file path, got {type(path_or_model).__name__}")
    path = Path(path_or_model)
    suffix = path.suffix.lower()
    if not path.exists():
        raise CheckpointError(f"{path}: model not found (expected a checkpoint folder, .onnx or .xml)")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; CrackSAM checkpoint folders are loaded with load_model, "
                              "exported models are .onnx or .xml files")
    if suffix == ".onnx":
        return OnnxRuntimeBackend(path, **kw)
    if suffix == ".xml":
        return OpenVINOBackend(path, **kw)
    if suffix == ".bin" and path.with_suffix(".xml").exists():
        raise CheckpointError(f"{path}: is the weights half of an OpenVINO IR; open {path.with_suffix('.xml').name}")
    raise CheckpointError(
        f"{path}: unknown model file type {suffix or '(no suffix)'!r}; expected .onnx (ONNX Runtime), "
        ".xml (OpenVINO IR) or a CrackSAM checkpoint folder"
    )


__all__ = [
    "Backend",
    "OnnxRuntimeBackend",
    "OpenVINOBackend",
    "PRECISIONS",
    "TARGETS",
    "TorchBackend",
    "check_input",
    "missing_dependency",
    "model_metadata",
    "open_backend",
    "read_onnx_metadata",
    "read_openvino_metadata",
    "require_file",
    "target_name",
    "write_openvino_metadata",
]
