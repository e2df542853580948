"""Resumable training checkpoints (``<run>/checkpoints/last.ckpt``) as seen from the model side:
one safe reader for every ``.ckpt`` read, and the checkpoint's weights as a model folder, so a
``.ckpt`` is accepted wherever a model is taken (``predict -m run/checkpoints/last.ckpt``).

Training writes what rebuilds the model into each checkpoint (:data:`MODEL_KEY`, see
:func:`model_record`); the weights are then saved once as an ordinary model folder next to the
checkpoint (``last.model/``), reused while the checkpoint is unchanged.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from cracksam._files import sha256_file
from cracksam.errors import CheckpointError
from cracksam.models.sam_checkpoint import cache_dir

MODEL_KEY = "cracksam_model"


def checksum_file(path: str | os.PathLike[str]) -> Path:
    """The sidecar holding a checkpoint's sha256 (``last.ckpt.sha256``), written with it by training."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def load_checkpoint_file(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a training checkpoint without running code from it; every failure (missing, empty,
    truncated, random bytes, bytes that no longer match the checksum written beside it, a pickle
    with Python objects, not one of our checkpoints) becomes a :class:`CheckpointError` naming the
    file and the problem, in one line.  Checkpoints without a checksum file (written by older
    versions, or copied without it) are read unverified."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: damaged checkpoint: the file is empty (0 bytes)")
    sums = checksum_file(path)
    if sums.is_file():
        try:
            expected = sums.read_text().split()[0]
        except (OSError, UnicodeDecodeError, IndexError):
            expected = "unreadable"
        if sha256_file(path) != expected:
            raise CheckpointError(f"{path}: damaged checkpoint: its bytes do not match {sums.name} "
                                  f"(changed since training wrote it), {size} bytes")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head[:1] == b"\x80":  # a bare pickle stream, not torch's zip container
            raise CheckpointError(f"{path}: refused: a raw pickle, not a PyTorch checkpoint "
                                  "(loading it could run code)")
        what = "truncated" if head == b"PK" else "not a PyTorch checkpoint (unrecognised bytes)"
        raise CheckpointError(f"{path}: damaged checkpoint: {what}, {size} bytes")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in reason:
            reason = "it holds Python objects other than tensors (refused: loading them could run code)"
        raise CheckpointError(f"{path}: refused checkpoint: {reason}") from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/EOFError/KeyError/... on damage
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: damaged checkpoint: {reason}") from None
    if not isinstance(obj, dict) or "state_dict" not in obj or "loops" not in obj:
        raise CheckpointError(f"{path}: not a resumable cracksam training checkpoint (no weights or loop state)")
    return obj


def model_record(model: Any, base: str | None) -> dict[str, Any]:
    """What rebuilds ``model`` (CrackSAM or a registry network) from a checkpoint's weights."""
    from cracksam.config import to_dict
    from cracksam.models.segmodels import SegModel

    arch = "segmodel" if isinstance(model, SegModel) else "cracksam"
    return {"architecture": arch, "model": to_dict(model.config), "base_checkpoint": base}


def _run_of(path: Path) -> Path:
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def model_folder(path: str | os.PathLike[str]) -> Path:
    """The model held by training checkpoint ``path``, as a model folder (written next to it as
    ``<stem>.model/`` the first time, rewritten when the checkpoint changes)."""
    from cracksam.config import from_dict
    from cracksam.models.cracksam import CrackSAM, CrackSAMConfig, build_cracksam
    from cracksam.models.lora_fold import LORA_SCALING_KEY, fold_lora
    from cracksam.models.quantizer_files import split_quantizers
    from cracksam.models.segmodels import SegModel, SegModelConfig, build_segmodel

    path = Path(path)
    digest = sha256_file(path) if path.is_file() else ""
    beside = path.with_name(f"{path.stem}.model")
    cached = cache_dir() / "checkpoint-models" / digest[:32]
    for target in (beside, cached):
        if _made_from(target) == digest:
            return target
    ckpt = load_checkpoint_file(path)
    record = ckpt.get(MODEL_KEY)
    if not isinstance(record, dict):
        raise CheckpointError(f"{path}: this checkpoint does not record its model (written by an older version); "
                              f"give the run folder {_run_of(path)} (its best/ model) instead")
    model: CrackSAM | SegModel
    if record.get("architecture") == "segmodel":
        model = build_segmodel(from_dict(SegModelConfig, record["model"], f"{path}: model"), load_pretrained=False)
    else:
        model = build_cracksam(from_dict(CrackSAMConfig, record["model"], f"{path}: model"))
    # A QAT run's quantisers are left out: the folder is the float model (its best/ has them).
    weights, _ = split_quantizers({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()})
    if LORA_SCALING_KEY in record:  # a run with encoder_delta.kind lora: its LoRA folded in, no peft needed
        try:
            weights = fold_lora(weights, record[LORA_SCALING_KEY])
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    missing = sorted(set(model.trainable_state_dict()) - set(weights))
    result = model.load_state_dict(weights, strict=False)
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{path}: weights do not fit the recorded model (missing {missing[:3]}, "
                              f"unexpected {result.unexpected_keys[:3]})")
    extra = {"step": int(ckpt.get("global_step", -1)), "from_checkpoint": str(path), "checkpoint_sha256": digest}
    # Beside the checkpoint unless a folder of that name is not one of ours (a user's folder is never
    # replaced) or the run folder is read-only: then in the user cache, keyed by the checkpoint's hash.
    if (not beside.exists() or _made_from(beside) is not None) and _write_folder(model, record, extra, beside):
        return beside
    cached.parent.mkdir(parents=True, exist_ok=True)
    if not _write_folder(model, record, extra, cached):
        raise CheckpointError(f"{path}: cannot write its model folder beside it nor in {cached.parent}")
    return cached


def _made_from(folder: Path) -> str | None:
    """The checkpoint hash a model folder was written from (None: not such a folder, e.g. a user's)."""
    try:
        digest = json.loads((folder / "config.json").read_text())["checkpoint_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return digest if isinstance(digest, str) else None


def _write_folder(model: Any, record: dict[str, Any], extra: dict[str, Any], target: Path) -> bool:
    """Write the model folder aside and rename it into place (a reader never sees half a folder);
    False where the parent folder cannot be written."""
    from cracksam.models.saving import save_trained

    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError:
        return False
    try:
        save_trained(model, tmp, base=record.get("base_checkpoint"), extra=extra)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True
