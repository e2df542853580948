"""Inference: the :class:`Predictor` (resize / tile / native modes, the same pre- and
post-processing for every runtime) and its backends (PyTorch, ONNX Runtime, OpenVINO) behind one
:class:`Backend` protocol.

Below deployment (which exports models and picks the fastest runtime, ``--runtime auto``) and
above models: evaluation scores any runtime through the Predictor and training distils from any
runtime's teacher.  ONNX Runtime and OpenVINO are optional, imported when a backend is opened.

* :mod:`.predictor`: ``Predictor``, ``Prediction``, ``inference_defaults``, and ``open_predictor``,
  the one door every command opens its model through (:mod:`.loading` resolves and loads it; the
  runtime chooser for ``--runtime auto`` is deployment's, passed in).
* :mod:`.protocol`: ``Backend``, ``RuntimeChooser``.
* :mod:`.backends`: ``TorchBackend``, ``OnnxRuntimeBackend``, ``OpenVINOBackend``, ``open_backend``,
  export metadata readers, the export target names.
* :mod:`.options`: ``PredictOptions``, the options of every command that opens a predictor.
* :mod:`.tiling`, :mod:`.inflight`, :mod:`.compiled`: windows, batches in flight, ``torch.compile``.
"""

from cracksam.inference.protocol import Backend

# Imported on first use: the protocol and the options are light, the predictor and backends
# import torch / albumentations, which `cracksam --help` must not pay for.
_LAZY = {
    "Predictor": "cracksam.inference.predictor",
    "Prediction": "cracksam.inference.predictor",
    "inference_defaults": "cracksam.inference.predictor",
    "open_predictor": "cracksam.inference.predictor",
    "PRECISIONS": "cracksam.inference.backends",
    "TARGETS": "cracksam.inference.backends",
    "TorchBackend": "cracksam.inference.backends",
    "OnnxRuntimeBackend": "cracksam.inference.backends",
    "OpenVINOBackend": "cracksam.inference.backends",
    "model_metadata": "cracksam.inference.backends",
    "open_backend": "cracksam.inference.backends",
    "read_onnx_metadata": "cracksam.inference.backends",
    "read_openvino_metadata": "cracksam.inference.backends",
    "target_name": "cracksam.inference.backends",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Backend", *_LAZY]
