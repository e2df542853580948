"""Options shared by several sub-commands, and their conversion into configs."""

from __future__ import annotations

import typer

from cracksam.errors import ConfigError
from cracksam.models.backbones import BACKBONES
from cracksam.models.cracksam import CrackSAMConfig
from cracksam.models.deltas import DELTA_KINDS, AdapterConfig, DeltaConfig, LoRAConfig

BackboneOpt = typer.Option("vit_b", "--backbone", help=f"SAM backbone: {', '.join(BACKBONES)}.")
DeltaOpt = typer.Option("adapter", "--delta", help=f"Delta: {', '.join(DELTA_KINDS)}.")
RankOpt = typer.Option(4, "--rank", help="LoRA rank r.")
TargetsOpt = typer.Option("q,v", "--targets", help="LoRA targets, a comma list of q, k, v, o.")
BottleneckOpt = typer.Option(32, "--bottleneck", help="Adapter bottleneck width m.")
ScaleOpt = typer.Option(0.2, "--scale", help="Scale s of the MLP-parallel adapter.")
ImageSizeOpt = typer.Option(448, "--image-size", help="Input size (a multiple of 16).")


def model_config_from_options(
    backbone: str, delta: str, rank: int, targets: str, bottleneck: int, scale: float, image_size: int
) -> CrackSAMConfig:
    if delta not in DELTA_KINDS:
        raise ConfigError(f"--delta must be one of {', '.join(DELTA_KINDS)}, got {delta!r}")
    return CrackSAMConfig(
        backbone=backbone,
        image_size=image_size,
        delta=DeltaConfig(
            kind=delta,  # type: ignore[arg-type]
            adapter=AdapterConfig(bottleneck=bottleneck, scale=scale),
            lora=LoRAConfig(rank=rank, targets=[t.strip() for t in targets.split(",") if t.strip()]),
        ),
    )
