"""Opening a model file as a backend with an explicitly named runtime: a checkpoint folder in
PyTorch, an ``.onnx`` file in ONNX Runtime, an OpenVINO ``.xml`` in OpenVINO.

Choosing the runtime for the user (``--runtime auto``) and running a checkpoint folder through ONNX
Runtime / OpenVINO need an export, which is deployment's business:
:func:`cracksam.deployment.runtime_cache.open_predictor` does that and comes back here for the rest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cracksam.errors import ConfigError
from cracksam.inference.protocol import Backend

# What each runtime name opens here; "auto" is deployment's (cracksam.deployment.runtime_cache).
EXPLICIT_RUNTIMES = ("torch", "onnxruntime", "openvino")


def is_gpu(device: str) -> bool:
    return device.lower().startswith(("cuda", "gpu"))


def is_checkpoint(path: Path) -> bool:
    """A checkpoint folder (or its weights / config file) rather than an exported model file."""
    return path.is_dir() or path.suffix == ".safetensors" or path.name == "config.json"


def load_checkpoint(path: Path, base: str | None = None, device: str = "cpu", allow_random_base: bool = False,
                    trust: bool = False) -> Any:
    """The PyTorch model of a checkpoint folder, on ``device`` (checked first: a missing GPU is one
    error line, not a traceback)."""
    from cracksam.inference.backend_torch import check_torch_device
    from cracksam.models.io import load_model

    check_torch_device(device)
    return load_model(path, base_checkpoint=base, map_location=device, allow_random_base=allow_random_base,
                      trust=trust)


def open_runtime(
    path: str | os.PathLike[str] | None,
    base: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    allow_random_base: bool = False,
    trust: bool = False,
    runtime: str | None = None,
) -> tuple[Backend, dict[str, Any]]:
    """The backend for ``path`` and what runs it and why (``runtime``, ``precision``, ``reason``).

    ``path``: a checkpoint folder, an ``.onnx`` file or an OpenVINO ``.xml``; ``None`` or
    ``"default"`` is the bundled model, a training run folder stands for its ``best/`` model.
    ``runtime``: None (the file's own: PyTorch for a checkpoint folder) or one of
    :data:`EXPLICIT_RUNTIMES`.  ``torch`` with an exported file runs that file (``torch`` is also the
    test suite's ``$CRACKSAM_RUNTIME``, which chooses among the runtimes of checkpoint folders)."""
    from cracksam.inference.backends import OnnxRuntimeBackend, OpenVINOBackend, TorchBackend, open_backend
    from cracksam.models.default import resolve_model_path

    if runtime is not None and runtime not in EXPLICIT_RUNTIMES:
        hint = " (auto is chosen by cracksam.deployment.runtime_cache.open_predictor)" if runtime == "auto" else ""
        raise ConfigError(f"unknown runtime {runtime!r}; choose from {', '.join(EXPLICIT_RUNTIMES)}{hint}")
    p = resolve_model_path(path)
    gpu = is_gpu(device)
    if is_checkpoint(p):
        if runtime not in (None, "torch"):
            if gpu:
                raise ConfigError(f"--runtime {runtime} runs on the CPU; with --device {device} use torch")
            raise ConfigError(f"--runtime {runtime}: {p} is a PyTorch checkpoint; run it through an export "
                              "(--runtime auto, or `cracksam export`)")
        model = load_checkpoint(p, base, device, allow_random_base, trust)
        backend: Backend = TorchBackend(model, device=device, threads=threads)
        return backend, {"runtime": "torch", "precision": backend.precision, "reason": "PyTorch eager"}
    if p.suffix.lower() == ".onnx":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else None
        backend = OnnxRuntimeBackend(p, threads=threads, providers=providers)
    elif p.suffix.lower() == ".xml":
        backend = OpenVINOBackend(p, device="GPU" if gpu else "CPU", threads=threads)
    else:
        backend = open_backend(p)  # raises a clear error naming the file
    if runtime not in (None, "torch", backend.name):
        raise ConfigError(f"--runtime {runtime}: {p.name} is a {backend.name} model; "
                          f"use --runtime auto or {backend.name}")
    return backend, {"runtime": backend.name, "precision": backend.precision, "reason": "the model file given"}


__all__ = ["EXPLICIT_RUNTIMES", "is_checkpoint", "is_gpu", "load_checkpoint", "open_runtime"]
