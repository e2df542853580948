"""Opening a model for prediction, once: the inside of the one door,
:func:`cracksam.inference.predictor.open_predictor` (which ``predict``, ``evaluate``, ``serve``,
``stream``, the survey engines and :meth:`Predictor.from_path` all go through).

:func:`open_model` resolves what the user named (``default``, a training run folder, a ``.ckpt``:
:func:`cracksam.models.default.resolve_model_path`) once, loads a checkpoint folder once, and asks
the runtime chooser it is given which backend runs it.  Choosing for the user (``--runtime auto``)
and running a checkpoint folder through ONNX Runtime / OpenVINO need an export, which is
deployment's business: the chooser (:func:`cracksam.deployment.runtime_cache.select_backend`) is
passed in by the commands, never imported here.  Without one a checkpoint folder runs in PyTorch.
An exported file (``.onnx``, OpenVINO ``.xml``) runs in its own runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cracksam.errors import ConfigError
from cracksam.inference.protocol import Announce, Backend, RuntimeChooser

if TYPE_CHECKING:
    from cracksam.inference.options import PredictOptions

# What each runtime name opens without a chooser; "auto" is the chooser's (or the file's own).
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


def open_model(options: PredictOptions, choose_runtime: RuntimeChooser | None = None,
               announce: Announce | None = None) -> tuple[Path, Backend, dict[str, Any]]:
    """``(path, backend, info)``: the model ``options.model`` names, resolved once (``path``), and
    the backend that runs it, with what was chosen and why (``info``: ``runtime``, ``precision``,
    ``reason``).

    A checkpoint folder is loaded once; then ``torch``, a GPU device, or no ``choose_runtime``:
    PyTorch; otherwise (``auto``, ``onnxruntime``, ``openvino`` on the CPU) ``choose_runtime``
    decides (``announce`` is passed on, to say when an export is built).  An exported file runs in
    its own runtime (``torch`` also runs it: the test suite's ``$CRACKSAM_RUNTIME``, which chooses
    among the runtimes of checkpoint folders)."""
    from cracksam.models.default import resolve_model_path

    runtime, device, threads = options.runtime, options.device, options.threads
    path = resolve_model_path(options.model)  # None / "default": the bundled model; a run folder: its best/
    if not is_checkpoint(path):
        return path, *_open_export(path, device, threads, None if runtime == "auto" else runtime)
    gpu = is_gpu(device)
    if runtime not in ("auto", "torch"):  # a named export runtime, for a checkpoint folder
        if gpu:
            raise ConfigError(f"--runtime {runtime} runs on the CPU; with --device {device} use torch")
        if choose_runtime is None:
            raise ConfigError(f"--runtime {runtime}: {path} is a PyTorch checkpoint; run it through an export "
                              "(--runtime auto, or `cracksam export`)")
    model = load_checkpoint(path, options.base, device, options.allow_random_base, options.trust)
    if runtime == "torch" or gpu or choose_runtime is None:  # the exports are checked and timed on the CPU
        from cracksam.inference.backends import TorchBackend

        backend: Backend = TorchBackend(model, device=device, threads=threads)
        return path, backend, {"runtime": "torch", "precision": backend.precision, "reason": "PyTorch eager"}
    return path, *choose_runtime(path, model, runtime, threads, announce)


def _open_export(path: Path, device: str, threads: int | None, runtime: str | None) -> tuple[Backend, dict[str, Any]]:
    """An ``.onnx`` file in ONNX Runtime, an OpenVINO ``.xml`` in OpenVINO; ``runtime`` (None: the
    file's own) must be that one, or ``torch``."""
    from cracksam.inference.backends import OnnxRuntimeBackend, OpenVINOBackend, open_backend

    gpu = is_gpu(device)
    backend: Backend
    if path.suffix.lower() == ".onnx":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else None
        backend = OnnxRuntimeBackend(path, threads=threads, providers=providers)
    elif path.suffix.lower() == ".xml":
        backend = OpenVINOBackend(path, device="GPU" if gpu else "CPU", threads=threads)
    else:
        backend = open_backend(path)  # raises a clear error naming the file
    if runtime not in (None, "torch", backend.name):
        raise ConfigError(f"--runtime {runtime}: {path.name} is a {backend.name} model; "
                          f"use --runtime auto or {backend.name}")
    return backend, {"runtime": backend.name, "precision": backend.precision, "reason": "the model file given"}


__all__ = ["EXPLICIT_RUNTIMES", "is_checkpoint", "is_gpu", "load_checkpoint", "open_model"]
