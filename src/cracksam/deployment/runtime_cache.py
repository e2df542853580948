"""The fastest runtime that keeps the masks, exported once per model and cached.

``predict`` / ``serve`` / ``stream`` with ``--runtime auto`` (their default) run a checkpoint
folder through the fastest installed runtime whose export passed its parity check against
PyTorch: on first use the model is exported (ONNX with dynamic height/width for fully
convolutional networks, so native-resolution prediction sees whole images as PyTorch does; an
OpenVINO IR when OpenVINO is installed), each export is compared with PyTorch on synthetic crack
images (mask IoU >= :data:`~cracksam.deployment.export.MIN_IOU`), timed briefly against PyTorch,
and the result is kept in ``$CRACKSAM_CACHE/runtimes/<name>-<hash>/`` (default
``~/.cache/cracksam``), keyed by the SHA-256 of the model's files and the cracksam version.
An export that fails parity is deleted and recorded as refused: it is never used.  Later runs
read the manifest and open the chosen file once its bytes match the SHA-256 the manifest recorded
when it was exported and checked (:mod:`cracksam.deployment.cache_integrity`).

The cache never blocks prediction and never lies: a damaged entry (a file failing its checksum,
a manifest unreadable or of the wrong shape) is re-exported once; when the cache cannot be
written (read-only, full) or the entry is still unusable, one warning line says why and PyTorch
runs.

A folder trained with ``train --qat`` also gets an INT8 OpenVINO candidate built from its own
quantisers (:mod:`cracksam.deployment.export_qat`; needs nncf), and a folder carrying an INT8 export
made on real photos (``cracksam export --attach``, :mod:`cracksam.deployment.attached_int8`; the
bundled model has one) offers that; either is held to the INT8 floor.  The check uses synthetic
images, so it is weaker than ``cracksam export --samples`` on real photos.

``--runtime torch|onnxruntime|openvino`` forces one (an explicitly named runtime that failed
parity is an error, not a silent fallback).  ``auto`` keeps PyTorch for CrackSAM (SAM ViT)
models, whose exports take minutes and gigabytes (make them with ``cracksam export``), and off
the CPU.

:func:`select_backend` is the runtime chooser that the commands hand to the one door to a
predictor, :func:`cracksam.inference.predictor.open_predictor` (inference never imports
deployment): the door resolves and loads the model, this module picks what runs it.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from cracksam import __version__
from cracksam._files import safe_name
from cracksam.deployment.cache_integrity import (
    SUMS,
    build_in_place,
    file_sums,
    one_line,
    read_cache_manifest,
    verify_files,
    warn,
    write_cache_manifest,
)
from cracksam.deployment.timing import time_backend
from cracksam.errors import ConfigError, CrackSAMError
from cracksam.inference.options import RUNTIMES
from cracksam.models.identity import update_model_digest

ENV_RUNTIME = "CRACKSAM_RUNTIME"
_FILES = {"onnxruntime": "model.onnx", "openvino": "model_fp16.xml", "openvino-int8": "model_int8_qat.xml"}
# Cache candidates by name -> the runtime that opens them; openvino-int8 only for a model trained
# with --qat (its own quantisers) or one carrying an INT8 export made on real photos (export --attach,
# cracksam.deployment.attached_int8): the cache has only synthetic images to calibrate on.
_RUNTIME_OF = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino-int8": "openvino"}
# The extra that installs every runtime (onnxruntime comes with the base install, openvino with this).
INSTALL_HINT = "pip install 'cracksam[deploy]'"
RUNTIME_HELP = ("auto: the fastest installed runtime whose cached export passed its parity check against PyTorch "
                "(exported once per model); or torch, onnxruntime, openvino. Env: CRACKSAM_RUNTIME.")


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    return runtime


def cache_root() -> Path:
    """``$CRACKSAM_CACHE/runtimes`` (default ``~/.cache/cracksam/runtimes``)."""
    from cracksam.models.sam_checkpoint import cache_dir

    return cache_dir() / "runtimes"


def model_key(model_dir: Path) -> str:
    """``<folder name>-<16 hex>``: SHA-256 of the cracksam version, the runtimes installed and the
    model's files (names and bytes, hashed as for its id: :mod:`cracksam.models.identity`), so
    retrained weights, a new exporter or a runtime installed since (``pip install 'cracksam[deploy]'``
    after the base install) get a new entry."""
    digest = hashlib.sha256(__version__.encode())
    digest.update(",".join(m for m in ("onnxruntime", "openvino", "nncf") if _found(m)).encode())
    update_model_digest(digest, model_dir)  # the files, hashed as for the model id (cracksam.models.identity)
    return f"{safe_name(Path(model_dir).name, 48)}-{digest.hexdigest()[:16]}"


def _found(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _installed(runtime: str) -> bool:
    module = {"onnxruntime": "onnxruntime", "openvino": "openvino"}[runtime]
    return _found(module) and _found("onnx")


def _samples(image_size: int, n: int = 6) -> np.ndarray:
    """Synthetic crack images (thin dark curves on textured backgrounds), the inputs every cache
    entry is checked on; real photos are what ``cracksam export --samples`` is for."""
    from cracksam.data.synthetic import synthetic_pair

    images = [synthetic_pair((image_size, image_size), seed=100 + i)[0] for i in range(n)]
    return np.stack(images).astype(np.float32).transpose(0, 3, 1, 2).copy()


def _ms_per_image(backend: Any, x: np.ndarray, runs: int = 3) -> float:
    """Median ms per image of ``runs`` runs on ``x``, after one to warm up (allocations, OpenVINO's
    first inference): the timing of ``cracksam bench``, fewer times."""
    return float(time_backend(backend, x, iterations=runs, warmup=1)["latency_ms_median"]) / len(x)


def _open(runtime: str, path: Path, threads: int | None) -> Any:
    from cracksam.inference.backends import OnnxRuntimeBackend, OpenVINOBackend

    if runtime == "onnxruntime":
        return OnnxRuntimeBackend(path, threads=threads)
    return OpenVINOBackend(path, threads=threads)


def _qat_ready(model_dir: Path | None) -> bool:
    from cracksam.models.quantizers import has_quantizer_files

    return (model_dir is not None and has_quantizer_files(model_dir) and _installed("openvino")
            and _found("nncf"))


def build_entry(model: Any, folder: Path, threads: int | None = None, model_dir: Path | None = None) -> dict[str, Any]:
    """Export ``model`` to every installed runtime in ``folder``, check and time each; write and
    return the manifest.  Exports failing parity are deleted.  ``model_dir``: the folder ``model``
    was loaded from; when it holds QAT quantisers or an attached INT8 export, an INT8 OpenVINO
    candidate is checked too."""
    from cracksam.deployment.attached_int8 import attached_int8
    from cracksam.deployment.export import MIN_IOU, export_onnx, export_openvino, parity_report
    from cracksam.deployment.export_qat import export_openvino_qat
    from cracksam.inference.backends import TorchBackend

    folder.mkdir(parents=True, exist_ok=True)
    reference = TorchBackend(model, threads=threads)
    samples = _samples(reference.image_size)
    one = samples[:1]
    candidates: list[dict[str, Any]] = []
    onnx_path = folder / _FILES["onnxruntime"]
    export_onnx(model, onnx_path, dynamic_shape=True)
    if _installed("openvino"):
        export_openvino(onnx_path, folder / _FILES["openvino"], fp16=True)
    skipped: dict[str, str] = {}
    attached, attached_problem = attached_int8(model_dir)
    if _qat_ready(model_dir):
        assert model_dir is not None  # _qat_ready says so
        try:
            export_openvino_qat(model_dir, folder / _FILES["openvino-int8"], dynamic_shape=True)
        except CrackSAMError as exc:  # damaged quantisers: the float model still runs; say why INT8 did not
            skipped["openvino-int8"] = str(exc)
    elif attached is not None and _installed("openvino"):
        shutil.copyfile(attached, folder / _FILES["openvino-int8"])
        shutil.copyfile(attached.with_suffix(".bin"), (folder / _FILES["openvino-int8"]).with_suffix(".bin"))
    elif attached_problem:
        skipped["openvino-int8"] = attached_problem
    sums = file_sums(folder)  # of the bytes the parity check below measures
    for name, runtime in _RUNTIME_OF.items():
        path = folder / _FILES[name]
        if not path.is_file() or not _installed(runtime):
            continue
        backend = _open(runtime, path, threads)
        report = parity_report(reference, backend, samples)
        floor = MIN_IOU[backend.precision]
        entry = {"name": name, "runtime": runtime, "precision": backend.precision, "file": path.name,
                 "dynamic_shape": bool(getattr(backend, "dynamic", False)), "mask_iou": report["mask_iou"],
                 "max_abs_prob_diff": report["max_abs_prob_diff"], "min_iou": floor,
                 "passed": report["mask_iou"] >= floor}
        if entry["passed"]:
            entry["ms_per_image"] = _ms_per_image(backend, one)
        else:  # never used: delete the export, keep the record of why
            del backend
            path.unlink(missing_ok=True)
            path.with_suffix(".bin").unlink(missing_ok=True)
            sums = {f: s for f, s in sums.items() if f not in (path.name, path.with_suffix(".bin").name)}
        candidates.append(entry)
    torch_ms = _ms_per_image(reference, one)
    passed = [c for c in candidates if c["passed"]]
    best = min(passed, key=lambda c: c["ms_per_image"], default=None)
    manifest = {
        "cracksam_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parity_images": f"{len(samples)} synthetic crack images at {reference.image_size} px",
        "torch_ms_per_image": torch_ms, "candidates": candidates, "skipped": skipped,
        "fastest": best["name"] if best and best["ms_per_image"] < torch_ms else "torch", SUMS: sums,
    }
    write_cache_manifest(folder, manifest)
    return manifest


def _choose(manifest: dict[str, Any], runtime: str, model_dir: Path) -> dict[str, Any] | None:
    """The candidate of ``manifest`` to run for ``runtime`` (None: PyTorch is fastest or nothing
    passed).  An explicitly named runtime whose export was refused is an error."""
    candidates = {c["name"]: c for c in manifest["candidates"]}
    if runtime != "auto":
        chosen = candidates.get(runtime)
        if chosen is None or not chosen["passed"]:
            why = (f"mask IoU {chosen['mask_iou']:.4f} < {chosen['min_iou']}" if chosen else "no export was made")
            raise CrackSAMError(f"--runtime {runtime}: the {runtime} export of {model_dir} was refused ({why}); "
                                "use --runtime auto or torch")
        return chosen
    name = manifest["fastest"]
    chosen = candidates.get(name) if name in _RUNTIME_OF and _installed(_RUNTIME_OF[name]) else None
    return chosen if chosen is not None and chosen["passed"] else None


def _pytorch(folder: Path, why: str) -> tuple[None, dict[str, Any]]:
    warn(f"runtime cache {folder}: {why}; running PyTorch")
    return None, {"reason": "runtime cache unusable, see the warning", "cache_problem": why, "cache": str(folder)}


def _cached_backend(model_dir: Path, model: Any, runtime: str, threads: int | None,
                    announce: Any) -> tuple[Any, dict[str, Any]]:
    """``(backend, info)`` of the cached export to run, ``(None, info)`` for PyTorch.  The entry is
    built the first time; a damaged one (manifest or files failing their checksums, an export that
    cannot be opened) is re-exported once; an entry that cannot be written or stays damaged is
    reported in one warning line and PyTorch runs: the cache never stops a prediction."""
    folder = cache_root() / model_key(model_dir)
    manifest, damage = read_cache_manifest(folder)
    rebuilt, why = False, damage  # why: what was wrong with the entry before it was re-exported
    while True:
        if manifest is None:
            if rebuilt:
                return _pytorch(folder, f"{why}; re-exported, but {damage}" if why else f"new entry: {damage}")
            if damage is None and announce:
                announce(f"exporting {model_dir} once for faster runtimes "
                         f"(checked against PyTorch; cached in {folder})")
            try:
                build_in_place(folder, lambda tmp: build_entry(model, tmp, threads, model_dir=model_dir),
                               replace=damage is not None)
            except Exception as exc:  # read-only, full disk, an exporter's error: PyTorch still runs
                from cracksam.deployment.export import disk_full

                cause = one_line(exc, 160)
                if disk_full(exc, folder.parent):  # OpenVINO says only "basic_ios::clear"
                    cause = f"no space left on the device: {cause}"
                return _pytorch(folder, f"{damage}; cannot re-export ({cause})" if damage
                                else f"cannot export ({cause})")
            rebuilt, why = True, damage
            manifest, damage = read_cache_manifest(folder)
            continue
        chosen = _choose(manifest, runtime, model_dir)
        repaired = f"runtime cache {folder}: {why}; re-exported it and checked it against PyTorch again"
        if chosen is None:
            if why:
                warn(repaired)
            return None, {"reason": "no export passed its parity check faster than PyTorch", "cache": str(folder)}
        damage = verify_files(folder, chosen["file"], manifest[SUMS])
        if damage is None:
            try:
                backend = _open(chosen["runtime"], folder / chosen["file"], threads)
            except Exception as exc:  # verified bytes this runtime cannot open (e.g. another version)
                damage = f"cannot open {chosen['file']} ({one_line(exc, 120)})"
            else:
                if why:
                    warn(repaired)
                torch_ms = float(manifest["torch_ms_per_image"])
                speedup = torch_ms / chosen["ms_per_image"] if chosen.get("ms_per_image") else None
                return backend, {  # the parity figure measured on these very bytes (checksummed)
                    "runtime": chosen["runtime"], "precision": chosen["precision"],
                    "reason": "asked for" if runtime != "auto" else "fastest runtime that passed its parity check",
                    "file": str(folder / chosen["file"]), "mask_iou": chosen["mask_iou"],
                    "speedup_vs_torch": speedup, "cache": str(folder)}
        manifest = None  # re-export once (replacing the damaged entry), else PyTorch


def select_backend(model_dir: Path, model: Any, runtime: str = "auto", threads: int | None = None,
                   announce: Any = None) -> tuple[Any, dict[str, Any]]:
    """The backend to run ``model`` (loaded from ``model_dir``) with, and what was chosen and why
    (``runtime``, ``reason``, and for exports ``file``, ``mask_iou``, ``speedup_vs_torch``).

    The runtime chooser that commands hand to the one door to a predictor,
    :func:`cracksam.inference.predictor.open_predictor` (``choose_runtime=select_backend``): the door
    resolves and loads the checkpoint folder on the CPU, then asks here for ``auto``,
    ``onnxruntime`` or ``openvino``."""
    from cracksam.inference.backends import TorchBackend
    from cracksam.models.cracksam import CrackSAM

    check_runtime(runtime)
    torch_info = {"runtime": "torch", "precision": "fp32"}
    if runtime == "torch":
        return TorchBackend(model, threads=threads), {**torch_info, "reason": "asked for (--runtime torch)"}
    if runtime == "auto":
        if isinstance(model, CrackSAM):
            return TorchBackend(model, threads=threads), {
                **torch_info, "reason": "SAM models are exported with `cracksam export`, not on the fly"}
        missing = [r for r in ("onnxruntime", "openvino") if not _installed(r)]
        if len(missing) == 2:
            return TorchBackend(model, threads=threads), {
                **torch_info, "reason": "neither onnxruntime nor openvino is installed", "not_installed": missing}
    elif not _installed(runtime):
        raise ConfigError(f"--runtime {runtime}: {runtime} (and onnx) is not installed; {INSTALL_HINT}")
    else:
        missing = []
    backend, info = _cached_backend(Path(model_dir), model, runtime, threads, announce)
    if missing:
        info = {**info, "not_installed": missing}
    if backend is None:
        return TorchBackend(model, threads=threads), {**torch_info, **info}
    return backend, info


def describe_choice(info: dict[str, Any]) -> str:
    """One line for the console, e.g. ``runtime: onnxruntime fp32 (fastest runtime that passed its
    parity check: mask IoU 1.0000 vs PyTorch, 1.9x PyTorch when cached)``."""
    head = f"runtime: {info['runtime']} {info.get('precision', '')}".rstrip()
    # A runtime --runtime auto could have tried but did not find: say how to get it.
    hint = f"; {' and '.join(info['not_installed'])} not installed: {INSTALL_HINT}" if info.get("not_installed") else ""
    if "mask_iou" in info:
        speed = f", {info['speedup_vs_torch']:.1f}x PyTorch when cached" if info.get("speedup_vs_torch") else ""
        return f"{head} ({info['reason']}: mask IoU {info['mask_iou']:.4f} vs PyTorch{speed}{hint})"
    return f"{head} ({info['reason']}{hint})"


__all__ = ["ENV_RUNTIME", "RUNTIMES", "RUNTIME_HELP", "build_entry", "cache_root", "check_runtime",
           "describe_choice", "model_key", "select_backend"]
