"""Export a segmentation model to ONNX (the first step of every deployment target).

The exported graph takes ``images`` (B, 3, S, S) float32 RGB in 0..255 (the SAM normalisation is
inside the graph) and returns ``logits`` (B, 2, S, S) (channel 1 = crack; the bilinear
upsampling from S/4 is inside the graph too).  The batch axis is dynamic; for fully
convolutional models (``dynamic_input``) height and width are too, so a native-resolution
prediction through ONNX Runtime or OpenVINO sees the image as PyTorch does (whole, not in S×S
windows).  Every file carries cracksam metadata (version, model config JSON, image size,
precision, dynamic / multiple) that the backends of :mod:`cracksam.inference.backends` read back.

Limits: ONNX files are written as a single protobuf, so models over 2 GB (ViT-H) cannot be
exported (external-data ONNX is not supported); ViT-B and ViT-L fit.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from cracksam import __version__
from cracksam.config import atomic_write_bytes
from cracksam.errors import CrackSAMError
from cracksam.inference.backends import META_PREFIX, missing_dependency, model_metadata
from cracksam.models.cracksam import CrackSAM
from cracksam.models.deltas import has_lora
from cracksam.models.deltas import merge_lora as merge_lora_fn
from cracksam.models.segmodels import SegModel

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
_PROTOBUF_LIMIT = 2**31 - 1
Exporter = Literal["auto", "torchscript", "dynamo"]



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


def _axes(dynamic_batch: bool, spatial: bool) -> dict[int, str]:
    axes = {0: "batch"} if dynamic_batch else {}
    return {**axes, 2: "height", 3: "width"} if spatial else axes


def _export_torchscript(net: torch.nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool, tmp: Path,
                        spatial: bool = False) -> Any:
    """The legacy TorchScript-tracing exporter (``dynamo=False``)."""
    import onnx

    axes = {INPUT_NAME: _axes(dynamic_batch, spatial), OUTPUT_NAME: _axes(dynamic_batch, spatial)}
    with _quiet_export():
        torch.onnx.export(
            net, (example,), str(tmp), dynamo=False, export_params=True, opset_version=opset,
            do_constant_folding=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes=axes if any(axes.values()) else None,
        )
    return onnx.load(str(tmp))


def _export_dynamo(net: torch.nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool,
                   spatial: bool = False) -> Any:
    """The torch.export-based exporter; it implements opset >= 18 only."""
    dims = {i: torch.export.Dim.DYNAMIC for i in _axes(dynamic_batch, spatial)}
    shapes = {INPUT_NAME: dims} if dims else None
    with _quiet_export():
        program = torch.onnx.export(
            net, (example,), None, dynamo=True, opset_version=max(opset, 18), input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_shapes=shapes, external_data=False, optimize=True, verbose=False,
        )
    assert program is not None  # dynamo=True always returns the program
    return program.model_proto


def _finish_proto(proto: Any, meta: dict[str, str], size: int, dynamic_batch: bool, spatial: bool = False) -> None:
    """Name the dimensions of input and output and attach metadata, in place."""
    batch: str | int = "batch" if dynamic_batch else 1
    hw: tuple[str | int, str | int] = ("height", "width") if spatial else (size, size)
    for value, channels in ((proto.graph.input[0], 3), (proto.graph.output[0], 2)):
        dims = value.type.tensor_type.shape.dim
        while len(dims) < 4:
            dims.add()
        for dim, want in zip(dims, (batch, channels, *hw), strict=False):
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


def _verify(data: bytes, net: torch.nn.Module, dynamic_batch: bool, multiple: int | None = None) -> None:
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
    shapes = [(b, size, size) for b in ((1, 3) if dynamic_batch else (1,))]
    if multiple:  # a dynamic-shape graph must also be right at another, non-square size
        shapes.append((1, size + multiple, max(multiple, size - multiple)))
    for batch, h, w in shapes:
        x = torch.rand(batch, 3, h, w, generator=gen) * 255
        with torch.inference_mode():
            ref = net(x).numpy()
        out = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        err = float(np.abs(out - ref).max()) if out.shape == ref.shape else float("inf")
        if not err <= 1e-3 * max(1.0, float(np.abs(ref).max())):
            raise RuntimeError(f"ONNX Runtime output differs from PyTorch for input {tuple(x.shape)} "
                               f"(shape {out.shape} vs {ref.shape}, max abs diff {err:.3g})")


def check_onnx_path(path: str | os.PathLike[str]) -> Path:
    """Exports and quantised copies are opened by their suffix, so an ONNX file must end in .onnx."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise CrackSAMError(f"{path}: an ONNX model must be named *.onnx")
    return path


def export_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    merge_lora: bool = True,
    exporter: Exporter = "auto",
    verify: bool = True,
    dynamic_shape: bool = False,
) -> Path:
    """Export ``model`` to an ONNX file at ``path`` and return the path.

    The model is deep-copied (``model`` itself keeps its LoRA), put on CPU in float32, LoRA is
    merged into the weights (``merge_lora``) and the copy is exported with input ``images``
    (B, 3, S, S) and output ``logits`` (B, 2, S, S), with a dynamic batch axis unless
    ``dynamic_batch=False`` (then B = 1).  ``exporter``: ``torchscript`` is PyTorch's legacy
    tracing exporter (``dynamo=False``: opset 17, fast); ``dynamo`` the torch.export-based one
    (opset >= 18); ``auto`` tries torchscript and falls back to dynamo if it fails or is gone.
    With ``verify`` the graph is run in ONNX Runtime (batch 1 and 3) and compared with PyTorch
    before the file is written.  ``dynamic_shape`` makes height and width dynamic too (multiples of
    the model's ``input_multiple``) for a model that declares ``dynamic_input`` (a fully
    convolutional :class:`SegModel`); when such a graph fails its check at another size, the
    export falls back to a fixed S×S graph (its metadata then has no ``dynamic``).  The file is
    written atomically (a temp file in the same folder, then renamed)."""
    try:
        import onnx
    except ImportError:
        raise missing_dependency("onnx") from None
    if not isinstance(getattr(getattr(model, "config", None), "image_size", None), int):
        raise TypeError(f"export_onnx needs a model with config.image_size, got {type(model).__name__}")
    path = check_onnx_path(path)
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

    spatial = bool(dynamic_shape) and bool(getattr(net, "dynamic_input", False))
    multiple = max(1, int(getattr(net, "input_multiple", 1)))
    names = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    attempts = [(n, True) for n in names] + [(n, False) for n in names] if spatial else [(n, False) for n in names]
    errors: list[str] = []
    for name, dyn in attempts:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if name == "torchscript":
                proto = _export_torchscript(net, example, opset, dynamic_batch, tmp, dyn)
                used = f"torch {torch.__version__} torchscript (dynamo=False), opset {opset}"
            else:
                proto = _export_dynamo(net, example, opset, dynamic_batch, dyn)
                used = f"torch {torch.__version__} dynamo, opset {max(opset, 18)}"
            meta = _onnx_metadata(net, "fp32", lora_merged, used)
            if dyn:
                meta.update(dynamic="true", multiple=str(multiple))
            _finish_proto(proto, meta, size, dynamic_batch, dyn)
            onnx.checker.check_model(proto)
            data = proto.SerializeToString()
            if verify:
                _verify(data, net, dynamic_batch, multiple if dyn else None)
        except Exception as exc:  # try the next exporter, report all if none works
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # a full disk: the next exporter would not fare better, and the caller names it
            shape = "dynamic H, W" if dyn else "fixed S×S"
            errors.append(f"{name} ({shape}): {type(exc).__name__}: {str(exc).strip()[:500]}")
            continue
        finally:
            tmp.unlink(missing_ok=True)
        atomic_write_bytes(path, data)
        return path
    raise RuntimeError(f"ONNX export of CrackSAM failed ({'; '.join(errors)})")


