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
:mod:`cracksam.inference.backend_torch` and :class:`OpenVINOBackend` in
:mod:`cracksam.inference.backend_openvino`, both re-exported here; the metadata keys and readers the
two exported-file backends share are in :mod:`cracksam.inference.backend_common`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cracksam.errors import CheckpointError, ConfigError, CrackSAMWarning
from cracksam.inference.backend_common import (
    META_KEYS,
    META_PREFIX,
    PRECISIONS,
    dynamic_from,
    first_line,
    image_size_from,
    missing_dependency,
    parse_config,
    precision_from_name,
    require_file,
)
from cracksam.inference.backend_openvino import OpenVINOBackend, read_openvino_metadata, write_openvino_metadata
from cracksam.inference.backend_torch import TorchBackend, check_input, model_metadata
from cracksam.inference.protocol import Backend
from cracksam.models.cracksam import CrackSAM
from cracksam.models.segmodels import SegModel

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
            raise CheckpointError(f"{self.path}: cannot load ONNX model ({first_line(exc)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise CheckpointError(f"{self.path}: expected one image input, got {len(inputs)} inputs")
        self._input, self._output = inputs[0].name, outputs[0].name
        meta_map = self.session.get_modelmeta().custom_metadata_map
        prefix = META_PREFIX + "."
        self.metadata = {k[len(prefix):]: v for k, v in meta_map.items() if k.startswith(prefix)}
        self.image_size = image_size_from(self.metadata, inputs[0].shape, str(self.path))
        self.dynamic, self.multiple = dynamic_from(self.metadata)
        self.precision = self.metadata.get("precision") or precision_from_name(self.path) or "fp32"
        self.model_config = parse_config(self.metadata.get("config"), str(self.path))
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
    "META_KEYS",
    "META_PREFIX",
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
