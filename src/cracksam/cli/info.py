"""``cracksam info``: parameter counts of a CrackSAM configuration (built on the meta device,
so even ViT-H needs no memory)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.options import (
    BackboneOpt,
    BottleneckOpt,
    DeltaOpt,
    ImageSizeOpt,
    RankOpt,
    ScaleOpt,
    TargetsOpt,
    model_config_from_options,
)
from cracksam.config import to_dict
from cracksam.models.cracksam import build_cracksam, count_parameters
from cracksam.models.io import read_checkpoint_config
from cracksam.models.registry import create


def _millions(value: int) -> str:
    # One decimal as in the paper's tables; small deltas (LoRA r=1: 0.16 M) need two.
    return f"{value / 1e6:.1f}" if value >= 1_000_000 or value == 0 else f"{value / 1e6:.2f}"


def info(
    backbone: str = BackboneOpt,
    delta: str = DeltaOpt,
    rank: int = RankOpt,
    targets: str = TargetsOpt,
    bottleneck: int = BottleneckOpt,
    scale: float = ScaleOpt,
    image_size: int = ImageSizeOpt,
    model: str | None = typer.Option(
        None, "--model", help="A registered model name or a CrackSAM checkpoint folder (overrides the options above)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with exact integer counts."),
) -> None:
    """Print total and trainable parameters of a CrackSAM configuration."""
    if model is not None and Path(model).exists():
        config = read_checkpoint_config(model)["model_config"]
    elif model is not None:
        config = create(model, device="meta").config
    else:
        config = model_config_from_options(backbone, delta, rank, targets, bottleneck, scale, image_size)
    backbone, image_size = config.backbone, config.image_size
    counts = count_parameters(build_cracksam(config, device="meta"))
    if as_json:
        payload = {
            "model": to_dict(config),
            "delta": config.delta.describe(),
            "total_parameters": counts.total,
            "trainable_parameters": counts.trainable,
            "delta_parameters": counts.delta,
            "head_parameters": counts.head,
            "delta_share_of_total": counts.delta / counts.total,
            "trainable_share_of_total": counts.trainable / counts.total,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"CrackSAM {backbone} @ {image_size}, delta: {config.delta.describe()}")
    table.add_column("parameters")
    table.add_column("count (M)", justify="right")
    table.add_column("share of total", justify="right")
    for label, value in (
        ("total", counts.total),
        ("trainable", counts.trainable),
        ("  delta (adapter/LoRA)", counts.delta),
        ("  prompt encoder + mask decoder", counts.head),
    ):
        table.add_row(label, _millions(value),
                      f"{100 * value / counts.total:.2f} %")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
