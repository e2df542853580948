"""Loading official SAM checkpoints (``sam_vit_{b,l,h}_*.pth``) into CrackSAM.

Official checkpoints are trained at 1024×1024 (64×64 tokens) with 4 mask tokens.  CrackSAM runs at
any multiple of 16 (448 -> 28×28 tokens) with 2 mask tokens, so before loading:

* the absolute position embedding (1, 64, 64, C) is resized bilinearly to the new token grid;
* the relative-position tables of the global-attention blocks (2·64−1, head_dim) are resized
  linearly to 2·tokens−1 (window blocks keep 2·14−1, the window does not change);
* the decoder's output tokens, hypernetwork MLPs and IoU head are cut to the first
  ``num_mask_tokens`` entries (the remaining official ones are reported as unused).

Files are read with ``torch.load(weights_only=True)``: a checkpoint can never run code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
import torch.nn.functional as F

from cracksam.errors import CheckpointError
from cracksam.models.backbones import BACKBONES, BackboneSpec, get_backbone

if TYPE_CHECKING:  # cracksam.models.cracksam imports this module's users; hints only
    from cracksam.models.cracksam import CrackSAM

_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


@dataclass
class LoadReport:
    """What happened while loading a base checkpoint, for the user to read."""

    path: str
    resized: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # base weights the file lacked (left random)
    unexpected: list[str] = field(default_factory=list)  # keys in the file the model does not use

    def summary(self) -> str:
        lines = [f"loaded {self.path}"]
        if self.resized:
            lines.append(f"  resized to the input size: {len(self.resized)} tensors")
        if self.truncated:
            lines.append(f"  cut to the CrackSAM mask tokens: {len(self.truncated)} tensors")
        if self.missing:
            lines.append(f"  missing (left at random init): {', '.join(self.missing[:8])}"
                         + (f" ... ({len(self.missing)} in all)" if len(self.missing) > 8 else ""))
        if self.unexpected:
            lines.append(f"  unused: {', '.join(self.unexpected[:8])}"
                         + (f" ... ({len(self.unexpected)} in all)" if len(self.unexpected) > 8 else ""))
        return "\n".join(lines)


# -- reading ------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where downloaded official checkpoints go (``$CRACKSAM_CACHE`` or ``~/.cache/cracksam``)."""
    return Path(os.environ.get("CRACKSAM_CACHE", Path.home() / ".cache" / "cracksam"))


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_official(name: str, directory: Path | None = None, progress: bool = True) -> Path:
    """Path of official checkpoint ``name`` (``vit_b``/``vit_l``/``vit_h``) in the cache,
    downloading it first if absent and checking its MD5 (Meta publishes MD5s; the prefix is in
    the file name).  A download that fails or does not match is deleted, never left in the cache."""
    spec = get_backbone(name)
    if spec.checkpoint_url is None:
        raise CheckpointError(f"backbone {name!r} has no official checkpoint to download")
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / Path(urlparse(spec.checkpoint_url).path).name
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        torch.hub.download_url_to_file(spec.checkpoint_url, str(partial), progress=progress)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        partial.unlink(missing_ok=True)
        raise CheckpointError(
            f"could not download the official SAM {name} checkpoint from {spec.checkpoint_url} ({exc}); "
            "download it by hand and pass its path to --base"
        ) from None
    if spec.checkpoint_md5 and _md5(partial) != spec.checkpoint_md5:
        partial.unlink(missing_ok=True)
        raise CheckpointError(f"downloaded {target.name} does not match its published MD5; deleted it")
    os.replace(partial, target)
    return target


def resolve_checkpoint(value: str | os.PathLike[str]) -> Path:
    """A path, or the name of an official checkpoint (``vit_h``) which is downloaded if needed."""
    if isinstance(value, str) and value in BACKBONES and not Path(value).exists():
        return download_official(value)
    path = Path(value)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    return path


def read_state_dict(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Safely read a PyTorch state dict; every failure becomes a :class:`CheckpointError`
    naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0]
        if "Weights only load failed" in reason:
            reason = "it contains Python objects other than tensors, which are not loaded for safety"
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({reason})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "central directory" in reason or "zip archive" in reason or isinstance(exc, EOFError):
            reason = f"the file is truncated or corrupt ({reason})"
        raise CheckpointError(f"{path}: cannot read checkpoint: {reason}") from None
    except Exception as exc:  # noqa: BLE001 - the unpickler raises KeyError/IndexError/... on garbage
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    # Some training scripts wrap the weights.
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    return obj


def detect_backbone(state_dict: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(embed_dim, depth) of the SAM image encoder in ``state_dict``."""
    weight = state_dict.get("image_encoder.patch_embed.proj.weight")
    if weight is None:
        raise KeyError("image_encoder.patch_embed.proj.weight")
    blocks = {k.split(".")[2] for k in state_dict if k.startswith("image_encoder.blocks.")}
    return int(weight.shape[0]), len(blocks)


def _describe(embed: int, depth: int) -> str:
    for spec in BACKBONES.values():
        if (spec.embed_dim, spec.depth) == (embed, depth):
            return f"SAM {spec.name} (embed {embed}, {depth} blocks)"
    return f"an encoder with embed {embed} and {depth} blocks"


# -- adapting -----------------------------------------------------------------------------------


def _resize_pos_embed(pos: torch.Tensor, tokens: int) -> torch.Tensor:
    """(1, h, w, C) -> (1, tokens, tokens, C), bilinear (as SAMed / official CrackSAM)."""
    grid = pos.permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(tokens, tokens), mode="bilinear", align_corners=False)
    return grid.permute(0, 2, 3, 1).to(pos.dtype)


def _resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    """(L, head_dim) -> (length, head_dim), linear (as SAM's own ``get_rel_pos``)."""
    resized = F.interpolate(table.t().unsqueeze(0).float(), size=length, mode="linear", align_corners=False)
    return resized.squeeze(0).t().to(table.dtype)


def adapt_state_dict(
    state_dict: dict[str, torch.Tensor], model: CrackSAM, report: LoadReport
) -> dict[str, torch.Tensor]:
    """Reshape official tensors to ``model``'s input size and mask-token count."""
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        # Keys the model lacks are reported, not loaded: foreign networks, and the official
        # decoder's hypernetwork MLPs beyond CrackSAM's mask tokens (output_hypernetworks_mlps.2-3).
        if not key.startswith(_PREFIXES) or key not in target:
            report.unexpected.append(key)
            continue
        want = target[key].shape
        if value.shape != want:
            if key == "image_encoder.pos_embed" and value.ndim == 4 and value.shape[-1] == want[-1]:
                value = _resize_pos_embed(value, want[1])
                report.resized.append(key)
            elif key.endswith((".rel_pos_h", ".rel_pos_w")) and value.shape[1] == want[1]:
                value = _resize_rel_pos(value, want[0])
                report.resized.append(key)
            elif (
                key.startswith(("mask_decoder.mask_tokens.", "mask_decoder.iou_prediction_head.layers."))
                and value.shape[0] >= want[0]
                and value.shape[1:] == want[1:]
            ):
                value = value[: want[0]]
                report.truncated.append(key)
            else:
                raise CheckpointError(
                    f"{report.path}: {key} has shape {tuple(value.shape)} but the model expects {tuple(want)}"
                )
        out[key] = value
    return out


def load_sam_checkpoint(
    model: CrackSAM,
    checkpoint: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    spec: BackboneSpec | None = None,
) -> LoadReport:
    """Load an official SAM checkpoint (path or ``vit_b``/``vit_l``/``vit_h``) into CrackSAM.

    Delta parameters (adapter/LoRA) are not in official files and keep their initialisation;
    any other base weight missing from the file is reported in ``LoadReport.missing``.
    """
    path = resolve_checkpoint(checkpoint)
    spec = spec or get_backbone(model.config.backbone)
    state_dict = read_state_dict(path, map_location)
    try:
        embed, depth = detect_backbone(state_dict)
    except KeyError:
        raise CheckpointError(
            f"{path}: not a SAM checkpoint (no image_encoder.patch_embed.proj.weight; "
            "is it a CrackSAM delta file? load those with cracksam.models.load_delta)"
        ) from None
    if (embed, depth) != (spec.embed_dim, spec.depth):
        raise CheckpointError(
            f"{path}: checkpoint is {_describe(embed, depth)}, but the model's backbone is "
            f"{spec.name} (embed {spec.embed_dim}, {spec.depth} blocks); pass the matching --backbone"
        )
    report = LoadReport(path=str(path))
    adapted = adapt_state_dict(state_dict, model, report)
    result = model.load_state_dict(adapted, strict=False)
    report.missing = [k for k in result.missing_keys if ".adapter." not in k and ".lora_" not in k]
    return report
