"""Options shared by several sub-commands, and their conversion into configs.

Nothing here imports torch: every command module imports this one when ``cracksam`` starts, and
``cracksam --help`` must not pay for torch and segment_anything.  The names below therefore copy
:data:`cracksam.models.backbones.BACKBONES` and :data:`cracksam.models.deltas.DELTA_KINDS`
(a test checks that they stay equal).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cracksam.errors import ConfigError

if TYPE_CHECKING:
    from cracksam.models.cracksam import CrackSAMConfig

BACKBONE_NAMES: tuple[str, ...] = ("vit_b", "vit_l", "vit_h", "tiny")
DELTA_NAMES: tuple[str, ...] = ("none", "adapter", "lora", "adapter+lora", "full")
DEFAULT_MODEL_NAME = "default"  # --model default: the bundled model (or $CRACKSAM_DEFAULT_MODEL)

# Copies of cracksam.deployment.runtime_cache's names (that module imports numpy).
RUNTIME_ENV = "CRACKSAM_RUNTIME"
RUNTIME_HELP = ("auto (default): the fastest installed runtime whose export passed its parity check against PyTorch "
                "(exported once per model, cached under $CRACKSAM_CACHE); or torch, onnxruntime, openvino.")

MODEL_HELP = ("Checkpoint folder, training run folder (its best/), .onnx file or OpenVINO .xml; "
              "'default' (the default) is the bundled model.")


DYNAMIC_HELP = ("Fully convolutional models: dynamic height and width, so the export runs whole photos as predict "
                "does, checked on whole photos (default); off: a fixed S×S graph, run in S×S windows. CrackSAM is "
                "always S×S.")


def how_it_runs(mode: str, size: int) -> str:
    """How a model sees a photo, for ``info`` and ``export``: ``@ 448`` only where the photo is
    resized to S×S (CrackSAM, resize-mode networks); a native-mode network runs the photo at its
    own size, S being only the size of its training crops."""
    if mode == "native":
        return f"runs at the photo's own size (native; trained on {size}×{size} crops)"
    if mode == "tile":
        return f"runs {size}×{size} windows at the photo's own resolution (tile)"
    return f"@ {size}"


RANDOM_BASE_HELP = "Keep random SAM base weights of a delta checkpoint without its base (tiny models, tests)."
TRUST_HELP = ("Load checkpoint folders that carry no checksums (written by cracksam before format 2) "
              "without verifying them.  A checksum that is present must still match.")


def trust_option() -> Any:
    """``--trust``, the same flag on every command that loads a model (one definition, one help text)."""
    return typer.Option(False, "--trust", help=TRUST_HELP)


def model_path_option(value: str | os.PathLike[str] | None) -> Path:
    """The model named on the command line: None or ``default`` is the bundled model (unless a
    file or folder of that name exists), a training run folder is its ``best/``."""
    from cracksam.models.default import resolve_model_path

    return resolve_model_path(value)


def model_config_from_options(
    backbone: str, delta: str, rank: int, targets: str, bottleneck: int, scale: float, image_size: int
) -> CrackSAMConfig:
    from cracksam.models.cracksam import CrackSAMConfig
    from cracksam.models.deltas import AdapterConfig, DeltaConfig, LoRAConfig

    if delta not in DELTA_NAMES:
        raise ConfigError(f"--delta must be one of {', '.join(DELTA_NAMES)}, got {delta!r}")
    return CrackSAMConfig(
        backbone=backbone,
        image_size=image_size,
        delta=DeltaConfig(
            kind=delta,  # type: ignore[arg-type]
            adapter=AdapterConfig(bottleneck=bottleneck, scale=scale),
            lora=LoRAConfig(rank=rank, targets=[t.strip() for t in targets.split(",") if t.strip()]),
        ),
    )
