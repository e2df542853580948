"""The OpenVINO backend (:class:`OpenVINOBackend`) and the rt_info metadata of OpenVINO IRs.
Re-exported by :mod:`cracksam.inference.backends`; what it shares with the ONNX Runtime backend
(metadata keys and readers, file checks) is in :mod:`cracksam.inference.backend_common`.

Performance hints: ``LATENCY`` (one request as fast as possible: all cores on one inference) or
``THROUGHPUT`` (several CPU streams, each a few cores, so several requests run at once).  For a
folder of photos or the tiles of one large photo what counts is images per second, so
:meth:`OpenVINOBackend.run_many` keeps ``in_flight`` asynchronous infer requests busy
(``AsyncInferQueue``); the logits are those of :meth:`~OpenVINOBackend.run`, in order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cracksam.errors import CheckpointError, ConfigError
from cracksam.inference.backend_common import (
    META_KEYS,
    META_PREFIX,
    dynamic_from,
    first_line,
    image_size_from,
    missing_dependency,
    parse_config,
    precision_from_name,
    require_file,
)
from cracksam.inference.backend_torch import check_input

HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")


def read_openvino_metadata(model: Any) -> dict[str, str]:
    """The ``cracksam/*`` rt_info of an ``openvino.Model`` (keys without the prefix)."""
    meta: dict[str, str] = {}
    for key in META_KEYS:
        if model.has_rt_info([META_PREFIX, key]):
            meta[key] = str(model.get_rt_info([META_PREFIX, key]).astype(str))
    return meta


def write_openvino_metadata(model: Any, meta: dict[str, str]) -> None:
    for key, value in meta.items():
        model.set_rt_info(str(value), [META_PREFIX, key])


def _openvino_graph_precision(model: Any) -> str:
    """fp32/fp16/int8 from the ops of an IR exported elsewhere (no cracksam metadata)."""
    has_fp16 = False
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize" or (kind == "Constant" and op.get_element_type().get_type_name() in ("i8", "u8")):
            return "int8"
        if kind == "Constant" and op.get_element_type().get_type_name() == "f16":
            has_fp16 = True
    return "fp16" if has_fp16 else "fp32"


def read_openvino_model(core: Any, xml: Path) -> Any:
    """``core.read_model`` with every failure turned into a CheckpointError naming the file."""
    xml = require_file(xml, "OpenVINO IR (.xml)")
    if xml.suffix.lower() == ".xml":
        bin_path = xml.with_suffix(".bin")
        if not bin_path.is_file():
            raise CheckpointError(f"{xml}: its weights file {bin_path.name} is missing (an IR is an .xml plus a .bin)")
    try:
        return core.read_model(str(xml))
    except Exception as exc:
        raise CheckpointError(f"{xml}: cannot read model ({first_line(exc)})") from None


class OpenVINOBackend:
    """An OpenVINO IR (``.xml`` + ``.bin``) run by the OpenVINO runtime.

    ``threads`` sets ``INFERENCE_NUM_THREADS`` (CPU only).  ``hint``: OpenVINO's
    ``PERFORMANCE_HINT`` (``LATENCY``, ``THROUGHPUT``; None: the plugin's default), with
    ``streams`` (``NUM_STREAMS``, THROUGHPUT only) when given.  ``inference_precision`` sets
    ``INFERENCE_PRECISION_HINT`` on CPU: ``"f32"`` (default) computes in float32 whatever the
    weights are stored as, so FP16 IRs match PyTorch; ``None`` keeps the plugin's default, which
    is bf16 on CPUs with AMX/AVX512-BF16 (faster, less exact).  ``config`` passes any other
    OpenVINO properties.  The batch dimension of exported IRs is dynamic."""

    name = "openvino"
    dynamic = False
    multiple = 1

    def __init__(self, xml_path: str | os.PathLike[str], device: str = "CPU", threads: int | None = None,
                 inference_precision: str | None = "f32", config: dict[str, Any] | None = None,
                 hint: str | None = None, streams: int | None = None) -> None:
        if hint is not None and hint.upper() not in HINTS:  # before the slow model read
            raise ConfigError(f"unknown OpenVINO performance hint {hint!r} (choose {', '.join(HINTS)})")
        if streams is not None and streams < 1:
            raise ConfigError(f"OpenVINO streams must be >= 1, got {streams}")
        # A missing file is reported as such even where OpenVINO is not installed.
        require_file(xml_path, "OpenVINO IR (.xml)")
        try:
            import openvino as ov
        except ImportError:
            raise missing_dependency("openvino") from None
        self.path = Path(xml_path)
        self.device = device
        core = ov.Core()
        model = read_openvino_model(core, self.path)
        if len(model.inputs) != 1 or not model.outputs:
            raise CheckpointError(f"{self.path}: expected one image input, got {len(model.inputs)} inputs")
        self.metadata = read_openvino_metadata(model)
        shape = model.inputs[0].get_partial_shape()
        dims: list[Any] = [d.get_length() if d.is_static else None for d in shape] if shape.rank.is_static else []
        self.image_size = image_size_from(self.metadata, dims, str(self.path))
        self.dynamic, self.multiple = dynamic_from(self.metadata)
        self.precision = (self.metadata.get("precision") or precision_from_name(self.path)
                          or _openvino_graph_precision(model))
        self.model_config = parse_config(self.metadata.get("config"), str(self.path))
        properties: dict[str, Any] = {}
        if device.upper().startswith("CPU"):
            if threads is not None:
                properties["INFERENCE_NUM_THREADS"] = int(threads)
            if inference_precision is not None:
                properties["INFERENCE_PRECISION_HINT"] = inference_precision
        if hint is not None:
            properties["PERFORMANCE_HINT"] = hint.upper()
        if streams is not None:
            properties["NUM_STREAMS"] = int(streams)
        properties.update(config or {})
        try:
            self.compiled = core.compile_model(model, device, properties)
        except Exception as exc:
            raise CheckpointError(f"{self.path}: cannot compile model for {device} ({first_line(exc)})") from None
        self._request = self.compiled.create_infer_request()
        self._output = self.compiled.outputs[0]
        self.threads = threads

    def run(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, self.image_size, self.multiple if self.dynamic else None)
        result = self._request.infer({0: x})
        return np.array(result[self._output], dtype=np.float32, copy=True)

    def optimal_requests(self) -> int:
        """How many requests in flight the compiled model wants (its streams under THROUGHPUT)."""
        try:
            return max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception:  # some plugins do not report it
            return 1

    def run_many(self, batches: Sequence[np.ndarray], in_flight: int = 2) -> list[np.ndarray]:
        """Logits of each batch, with up to ``in_flight`` asynchronous infer requests running."""
        import openvino as ov

        if in_flight < 1:
            raise ConfigError(f"in_flight must be >= 1, got {in_flight}")
        inputs = [check_input(x, self.image_size, self.multiple if self.dynamic else None) for x in batches]
        if in_flight == 1 or len(inputs) < 2:
            return [self.run(x) for x in inputs]
        out: list[np.ndarray | None] = [None] * len(inputs)
        queue = ov.AsyncInferQueue(self.compiled, min(in_flight, len(inputs)))

        def done(request: Any, index: int) -> None:  # runs on OpenVINO's thread; copy before reuse
            out[index] = np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

        queue.set_callback(done)
        for i, x in enumerate(inputs):
            queue.start_async({0: x}, i)
        queue.wait_all()
        return [o for o in out if o is not None] if all(o is not None for o in out) else _raise_incomplete()

    def __repr__(self) -> str:
        return (f"OpenVINOBackend({str(self.path)!r}, device={self.device!r}, image_size={self.image_size}, "
                f"precision={self.precision})")


def _raise_incomplete() -> list[np.ndarray]:
    raise RuntimeError("an OpenVINO asynchronous request finished without output")


__all__ = ["HINTS", "OpenVINOBackend", "read_openvino_metadata", "write_openvino_metadata"]
